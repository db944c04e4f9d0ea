"""The advertiser's review of a decided conversion, on the aggregate (pure: no I/O):
which changes each status allows, what each change records, what the relay publishes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from attribution_rules_fixtures import click, credited, report

from afflux_attribution.application.published import to_envelope
from afflux_attribution.domain.conversion import Appeal, Conversion, InvalidPayout, TransitionRefused
from afflux_attribution.domain.rules import Attributed, Rejected
from afflux_contracts import (
    ConversionAttributed,
    ConversionStatus,
    ConversionStatusChanged,
    Money,
    RejectionReason,
    StatusChange,
    decode,
    encode,
)
from afflux_contracts.attribution import Appeal as AppealOnLog


def approved(payout: str = "9.60", currency: str = "USD") -> Conversion:
    conversion = Conversion.decide(report(), Attributed(credited(click(partner_id="partner-7")), currency,
                                                        Decimal(payout), None), "cause-1")
    conversion.collect_events()
    return conversion


def held_for_review() -> Conversion:
    """A priced conversion waiting for review (as a decision that needs approval leaves it)."""
    conversion = approved()
    conversion.status = ConversionStatus.PENDING
    return conversion


def test_a_reversal_of_an_approved_conversion_is_published_keyed_by_partner_with_its_payout() -> None:
    conversion = approved()

    conversion.change_status(StatusChange.REVERSED, reason="chargeback", note="bank dispute 4471")

    [stored] = conversion.collect_events()
    envelope = to_envelope(stored)
    assert envelope is not None
    assert envelope.payload == ConversionStatusChanged(
        conversion_id="conv-1", partner_id="partner-7", offer_id="offer-1", status=StatusChange.REVERSED,
        previous_status=ConversionStatus.APPROVED, payout=Money(amount=Decimal("9.60"), currency="USD"),
        reason="chargeback", note="bank dispute 4471", changed_at=stored.timestamp,
    )
    assert envelope.key == "partner-7" and envelope.correlation_id == "tx-1"
    assert decode(encode(envelope)).payload == envelope.payload
    assert (conversion.status, conversion.reason, conversion.note) == \
        (ConversionStatus.REVERSED, "chargeback", "bank dispute 4471")


def test_an_adjustment_keeps_the_conversion_approved_with_the_new_payout() -> None:
    conversion = approved()

    conversion.adjust(Decimal("4.25"), reason="partial refund")

    envelope = to_envelope(conversion.collect_events()[0])
    assert envelope is not None and isinstance(envelope.payload, ConversionStatusChanged)
    assert (envelope.payload.status, envelope.payload.previous_status, envelope.payload.payout) == \
        (StatusChange.ADJUSTED, ConversionStatus.APPROVED, Money(amount=Decimal("4.25"), currency="USD"))
    assert (conversion.status, conversion.payout) == (ConversionStatus.APPROVED, Decimal("4.25"))


@pytest.mark.parametrize("start, change, end", [
    (ConversionStatus.PENDING, StatusChange.APPROVED, ConversionStatus.APPROVED),
    (ConversionStatus.PENDING, StatusChange.REJECTED, ConversionStatus.REJECTED),
    (ConversionStatus.APPROVED, StatusChange.REVERSED, ConversionStatus.REVERSED),
])
def test_allowed_review_changes_move_the_conversion(
    start: ConversionStatus, change: StatusChange, end: ConversionStatus,
) -> None:
    conversion = held_for_review() if start is ConversionStatus.PENDING else approved()
    conversion.change_status(change)
    assert conversion.status is end
    assert [type(e).__name__ for e in conversion.collect_events()] == ["StatusChanged"]


def test_a_rejected_conversion_is_approved_on_appeal_with_its_payout() -> None:
    conversion = held_for_review()
    conversion.change_status(StatusChange.REJECTED, reason="fraud suspected")
    conversion.change_status(StatusChange.APPROVED, note="appeal accepted")

    events = conversion.collect_events()
    appeal = to_envelope(events[-1])
    assert appeal is not None and isinstance(appeal.payload, ConversionStatusChanged)
    assert (appeal.payload.previous_status, appeal.payload.payout.amount) == \
        (ConversionStatus.REJECTED, Decimal("9.60"))
    assert conversion.status is ConversionStatus.APPROVED


@pytest.mark.parametrize("change", [StatusChange.APPROVED, StatusChange.REJECTED])
def test_an_approved_conversion_cannot_be_approved_or_rejected_and_the_refusal_names_its_status(
    change: StatusChange,
) -> None:
    conversion = approved()
    expected = f"conv-1 is approved: it cannot be {change.value}"
    with pytest.raises(TransitionRefused, match=expected) as refused:
        conversion.change_status(change)
    assert refused.value.status is ConversionStatus.APPROVED
    assert conversion.collect_events() == [] and conversion.status is ConversionStatus.APPROVED


@pytest.mark.parametrize("change", [StatusChange.APPROVED, StatusChange.REJECTED, StatusChange.REVERSED])
def test_a_reversal_is_final(change: StatusChange) -> None:
    conversion = approved()
    conversion.change_status(StatusChange.REVERSED)
    with pytest.raises(TransitionRefused, match=r"is reversed: .*final"):
        conversion.change_status(change)
    with pytest.raises(TransitionRefused, match="is reversed"):
        conversion.adjust(Decimal("1.00"))


def test_a_pending_or_rejected_conversion_cannot_be_adjusted_or_reversed() -> None:
    pending = held_for_review()
    with pytest.raises(TransitionRefused, match="is pending: it cannot be adjusted"):
        pending.adjust(Decimal("1.00"))
    with pytest.raises(TransitionRefused, match="is pending: it cannot be reversed"):
        pending.change_status(StatusChange.REVERSED)
    pending.change_status(StatusChange.REJECTED)
    with pytest.raises(TransitionRefused, match="is rejected: it cannot be reversed"):
        pending.change_status(StatusChange.REVERSED)


def test_a_conversion_rejected_before_pricing_cannot_be_approved() -> None:
    conversion = Conversion.decide(report(), Rejected(RejectionReason.CLICK_NOT_FOUND, "no click"), "c")
    with pytest.raises(TransitionRefused, match=r"rejected \(click_not_found\) at attribution"):
        conversion.change_status(StatusChange.APPROVED)


@pytest.mark.parametrize("payout, currency", [
    ("9.605", "USD"), ("-1.00", "USD"), ("12.5", "JPY"), ("1.0001", "KWD"),
])
def test_an_adjusted_payout_must_be_an_exact_non_negative_amount_of_the_currency(
    payout: str, currency: str,
) -> None:
    conversion = approved(currency=currency, payout="12")
    with pytest.raises(InvalidPayout):
        conversion.adjust(Decimal(payout))
    assert conversion.collect_events() == [] and conversion.payout == Decimal("12")


def test_an_adjusted_payout_with_trailing_zeros_is_exact_and_kept_in_minor_units() -> None:
    conversion = approved()
    conversion.adjust(Decimal("7.500"))
    assert str(conversion.payout) == "7.50"


def rejected_by(reason: RejectionReason) -> Conversion:
    by_click = credited(click(partner_id="partner-7", sub2="spring"))
    decision = Rejected(reason, "a rule said no", by_click, "USD")
    conversion = Conversion.decide(report(), decision, "cause-1")
    conversion.collect_events()
    return conversion


def an_appeal(by: str = "admin") -> Appeal:
    return Appeal("USD", Decimal("5.00"), Decimal("7.00"), None,
                  [{"rule": "appeal", "outcome": "passed", "detail": f"approved on appeal by {by}"}],
                  {"sub2": "spring"}, by, "false positive", None)


def test_a_conversion_rejected_by_a_rule_is_credited_on_appeal_as_conversion_attributed() -> None:
    conversion = rejected_by(RejectionReason.FRAUD_IP_LIMIT)

    conversion.appeal(an_appeal("finance-bot"))

    envelope = to_envelope(conversion.collect_events()[-1])
    assert envelope is not None and isinstance(envelope.payload, ConversionAttributed)
    published = envelope.payload
    assert (published.status, published.payout, published.partner_id) == \
        (ConversionStatus.APPROVED, Money(amount=Decimal("5.00"), currency="USD"), "partner-7")
    assert published.appeal == AppealOnLog(rejected_reason=RejectionReason.FRAUD_IP_LIMIT, by="finance-bot",
                                           reason="false positive")
    assert published.sub2 == "spring" and envelope.key == "partner-7"
    assert published.trace[-1].detail == "approved on appeal by finance-bot"
    assert (conversion.status, conversion.payout, conversion.reason) == \
        (ConversionStatus.APPROVED, Decimal("5.00"), "false positive")


def test_an_appealed_conversion_cannot_be_appealed_again() -> None:
    conversion = rejected_by(RejectionReason.OVER_CAP)
    conversion.appeal(an_appeal())
    with pytest.raises(TransitionRefused, match="only a conversion rejected by a rule"):
        conversion.appeal(an_appeal())


def test_a_conversion_never_credited_to_a_partner_cannot_be_appealed() -> None:
    conversion = Conversion.decide(report(), Rejected(RejectionReason.CLICK_NOT_FOUND, "no click"), "c")
    with pytest.raises(TransitionRefused, match=r"\(click_not_found\) at attribution, was never credited"):
        conversion.appealable()
