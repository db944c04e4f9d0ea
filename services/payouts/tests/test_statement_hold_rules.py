"""Holds in the fold of payouts' own log, pure (``domain/statement_fold.py``) and in the
aggregate (``domain/records.py``): a hold moves a payable statement to ``on_hold``, a release
back; a held statement is never paid; a hold of what is not payable, or a release of what
is not held, changes nothing; and the gate's reason names what the profile misses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from test_statement_rules import line

from afflux_contracts import StatementHeld, StatementPaid, StatementReleased
from afflux_payouts.domain.holds import Profile, hold_reason
from afflux_payouts.domain.ledger_fold import NotRecordedYet, Source
from afflux_payouts.domain.records import NotPayable, Statement
from afflux_payouts.domain.statement_fold import ON_HOLD, Books, Held, Paid, Released, Standing, fold
from afflux_payouts.domain.statement_fold import NotPayable as FoldRefused
from afflux_payouts.domain.statements import Close, Terms, decide_statement

AT = datetime(2026, 11, 2, tzinfo=UTC)
NAMES = {"statement_id": "st-1", "partner_id": "p-1", "currency": "USD"}


def source(offset: int) -> Source:
    return Source(event_id=uuid4(), known_on=AT, log_offset=offset,
                  recorded_from=f"afflux.payouts.v1#0@{offset}")


def books(status: str = "payable") -> Books:
    return Books(standings={"st-1": Standing("st-1", "p-1", "USD", status, Decimal("10.00"), "d" * 64)})


def test_a_hold_then_a_release_leave_the_statement_payable_and_say_so_in_the_writes() -> None:
    known = books()
    held = fold(known, [Held(StatementHeld(**NAMES, reason="no profile", held_at=AT), source(1))])
    assert held.holds == {"st-1": "no profile"} and known.standings["st-1"].status == ON_HOLD
    released = fold(known, [Released(StatementReleased(**NAMES, released_at=AT), source(2))])
    assert released.holds == {"st-1": None} and known.standings["st-1"].status == "payable"


def test_a_held_statement_is_never_paid_by_the_fold() -> None:
    paid = StatementPaid(**NAMES, amount=Decimal("10.00"), paid_at=AT)
    with pytest.raises(FoldRefused):
        fold(books(ON_HOLD), [Paid(paid, source(3))])


def test_a_hold_of_a_paid_statement_and_a_release_of_a_payable_one_change_nothing() -> None:
    assert fold(books("paid"), [Held(StatementHeld(**NAMES, reason="x", held_at=AT), source(1))]).holds == {}
    assert fold(books(), [Released(StatementReleased(**NAMES, released_at=AT), source(1))]).holds == {}


def test_a_hold_of_an_unknown_statement_waits_for_it() -> None:
    with pytest.raises(NotRecordedYet):
        fold(Books(), [Held(StatementHeld(**NAMES, reason="x", held_at=AT), source(1))])


def test_the_aggregate_refuses_to_pay_a_held_statement_until_it_is_released() -> None:
    close = Close(partner_id="p-1", currency="USD", period_end=AT, period_start=None, terms=Terms(),
                  closed_by="admin", log_position={}, issued_at=AT)
    issued = decide_statement(close, [line("c-1", "10.00")])
    assert issued is not None
    statement = Statement.issue(issued)
    statement.hold("no profile")
    with pytest.raises(NotPayable, match="on hold: no profile"):
        statement.pay("wire-1")
    assert statement.release() and not statement.release()
    statement.pay("wire-1")
    assert [type(e).__name__ for e in statement.collect_events()] == ["Issued", "Held", "Released", "Paid"]


def test_the_gate_names_what_the_profile_misses() -> None:
    def profile(*missing: str) -> Profile:
        return Profile("p-1", not missing, ",".join(missing), "DE", None, None, "sealed", uuid4())

    assert hold_reason(None) == "the partner has no tax and payment profile yet"
    assert hold_reason(profile("tax_form", "payment_method")) == \
        "the partner's tax and payment profile is incomplete: missing tax_form, payment_method"
    assert hold_reason(profile()) is None
