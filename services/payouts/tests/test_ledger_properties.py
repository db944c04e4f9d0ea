"""Properties of the ledger fold (``domain/ledger.py``, ``domain/balance.py``): the
order decisions arrive in, and decisions delivered again or re-published under a new
event_id, never change a partner's balance.

The store keeps one entry per ``conversion_id`` and accepts a later decision for it
only when it is ``same_commission``; ``ledger_of`` applies that rule to a stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from afflux_contracts import ConversionAttributed, ConversionStatus, Money, round_money
from afflux_payouts.domain.balance import balances_from_totals, fold_balances
from afflux_payouts.domain.ledger import Bucket, LedgerEntry, commission_for

BASE = datetime(2026, 3, 1, tzinfo=UTC)
Delivery = tuple[ConversionAttributed, UUID]


@st.composite
def decisions(draw: st.DrawFn) -> list[Delivery]:
    """Distinct conversions of one partner, each as first published."""
    count = draw(st.integers(min_value=0, max_value=12))
    made = []
    for index in range(count):
        decision = ConversionAttributed(
            conversion_id=f"conv-{index}", transaction_id=f"tx-{index}", partner_id="p-1",
            offer_id=draw(st.sampled_from(["o-1", "o-2"])), event="sale",
            payout=Money(amount=draw(st.decimals(min_value=0, max_value=10_000, places=3)),
                         currency=draw(st.sampled_from(["USD", "JPY", "KWD"]))),
            status=draw(st.sampled_from([ConversionStatus.APPROVED, ConversionStatus.ATTRIBUTED,
                                         ConversionStatus.PENDING])),
            clicked_at=BASE, converted_at=BASE + timedelta(minutes=index),
        )
        made.append((decision, draw(st.uuids())))
    return made


@st.composite
def redelivered(draw: st.DrawFn, originals: Sequence[Delivery]) -> list[Delivery]:
    """The originals, shuffled, some delivered again as they were and some re-published
    under a new event_id (as a producer that retries does)."""
    again = draw(st.lists(st.sampled_from(originals), max_size=10)) if originals else []
    republished = [(decision, draw(st.uuids())) for decision, _ in
                   (draw(st.lists(st.sampled_from(originals), max_size=5)) if originals else [])]
    return draw(st.permutations([*originals, *again, *republished]))


def ledger_of(stream: Sequence[Delivery]) -> list[LedgerEntry]:
    ledger: dict[str, LedgerEntry] = {}
    for decision, event_id in stream:
        entry = commission_for(decision, event_id)
        existing = ledger.setdefault(entry.conversion_id, entry)
        assert existing.same_commission(entry), (existing, entry)
    return list(ledger.values())


@given(data=st.data(), originals=decisions())
def test_order_and_duplicates_of_decisions_do_not_change_a_balance(
    data: st.DataObject, originals: list[Delivery]
) -> None:
    stream = data.draw(redelivered(originals))
    assert fold_balances(ledger_of(stream)) == fold_balances(ledger_of(originals))


@given(data=st.data(), originals=decisions())
def test_the_fold_does_not_depend_on_entry_order(data: st.DataObject, originals: list[Delivery]) -> None:
    entries = ledger_of(originals)
    assert fold_balances(data.draw(st.permutations(entries))) == fold_balances(entries)


@given(data=st.data(), originals=decisions())
def test_summing_by_bucket_in_any_grouping_gives_the_fold(
    data: st.DataObject, originals: list[Delivery]
) -> None:
    """The store sums buckets in SQL; replay folds entries: both must agree."""
    entries = ledger_of(originals)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(entries)), max_size=3)))
    groups = [entries[start:end] for start, end in zip([0, *cuts], [*cuts, len(entries)], strict=True)]
    totals: list[tuple[str, Bucket, Decimal]] = []
    for group in groups:
        sums: dict[tuple[str, Bucket], Decimal] = {}
        for entry in group:
            key = (entry.currency, entry.bucket)
            sums[key] = sums.get(key, Decimal(0)) + entry.amount
        totals.extend((currency, bucket, amount) for (currency, bucket), amount in sums.items())
    assert balances_from_totals(totals) == fold_balances(entries)


@given(originals=decisions())
def test_a_balance_is_the_sum_of_commissions_in_minor_units(originals: list[Delivery]) -> None:
    balances = fold_balances(ledger_of(originals))
    assert set(balances) == {decision.payout.currency for decision, _ in originals}
    for currency, balance in balances.items():
        expected = sum((round_money(d.payout.amount, currency) for d, _ in originals
                        if d.payout.currency == currency), Decimal(0))
        total = balance.accrued + balance.pending + balance.payable + balance.paid
        assert total == expected
        assert total == round_money(total, currency)
