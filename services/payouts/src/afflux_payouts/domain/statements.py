"""Closing a billing period: which lines a statement holds, and whether they become payable.

The ledger is a sum of facts, so a close never rewrites a commission. A
commission's *claimed* amount is what payable (or paid) statements hold for it;
the line a new statement adds is the difference between what the conversion
earned as of the period end and what it has claimed so far: a new commission, a
raise after an adjustment, or a negative amount when a paid commission was
reversed (a claw back). Balance adjustments are lines too, claimed once.

A statement's total decides it: at or above the partner's minimum payout (and not
negative) it is ``payable`` and claims its lines; below the minimum, or negative,
it is ``carried_over``: nothing becomes payable and its lines stay unclaimed, so
the next close lists them again (``carried_over`` then says how much of its total
came from before its period). The minimum applies in the partner's billing
currency; other currencies have none.

A statement moves money only when it is folded back from the log, and only if it is
*provable* (``refusal``): each of its lines is what the ledger holds unclaimed for
that commission or adjustment (earned as of the period end, from the records up to
the statement's ``log_position``, less what statements before it claimed), its
digest is that of its lines, its total their sum and its status the one its total
gives. Anything else (a statement put on the log by hand, say) is kept as
``refused`` with the reason, and pays nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from afflux_contracts import (
    LineKind,
    StatementIssued,
    StatementLine,
    StatementStatus,
    round_money,
    statement_digest,
)

ZERO = Decimal(0)


def statement_id_for(partner_id: str, currency: str, period_end: datetime) -> str:
    """A pure function of what the statement closes: the same close decided twice (a retry,
    a crash before the answer, two schedulers) is the same statement."""
    key = "\x1f".join((partner_id, currency, period_end.astimezone(UTC).isoformat()))
    return "st_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Terms:
    """What a partner's billing says about closing its periods (the defaults: no minimum)."""

    currency: str | None = None
    minimum_payout: Decimal = ZERO
    frequency: str | None = None

    def minimum_in(self, currency: str) -> Decimal:
        return self.minimum_payout if currency == self.currency else ZERO


@dataclass(frozen=True)
class Ask:
    """A question to the projection: what is open (earned and not claimed) for statements,
    per partner and currency, as of ``as_of`` (the facts that happened by then).

    Narrowed, as each use needs: to one partner and currency; to the records known on a
    moment (``known``: a preview as known then); to the records up to a log position
    (``positions``: ``topic#partition`` -> last offset, what a statement was decided
    from), claimed only by the statements recorded before one (``before``: its
    ``topic#partition@offset``); to the lines of some refs (``refs``: judging a
    statement's lines)."""

    key: str
    as_of: datetime
    partner_id: str | None = None
    currency: str | None = None
    known: datetime | None = None
    positions: Mapping[str, int] | None = None
    before: str | None = None
    refs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OpenLine:
    """A line a close would state: what one commission or adjustment of a partner has
    open, with the partner's last period end in that currency (``period_start``)."""

    partner_id: str
    currency: str
    line: StatementLine
    period_start: datetime | None


@dataclass(frozen=True)
class Close:
    """One close of one partner in one currency: what it knows when it decides."""

    partner_id: str
    currency: str
    period_end: datetime
    period_start: datetime | None
    terms: Terms
    closed_by: str
    log_position: dict[str, int]
    issued_at: datetime


def decide_statement(close: Close, lines: Sequence[StatementLine]) -> StatementIssued | None:
    """The statement ``close`` issues for the unclaimed ``lines`` (None: nothing to state)."""
    kept = tuple(sorted((line for line in lines if line.amount != 0), key=lambda line: (line.kind, line.ref)))
    if not kept:
        return None
    total = round_money(sum((line.amount for line in kept), ZERO), close.currency)
    minimum = close.terms.minimum_in(close.currency)
    status = StatementStatus.PAYABLE if total >= 0 and total >= minimum else StatementStatus.CARRIED_OVER
    start = close.period_start
    carried = sum((line.amount for line in kept if start is not None and line.happened_at <= start), ZERO)
    statement_id = statement_id_for(close.partner_id, close.currency, close.period_end)
    return StatementIssued(
        statement_id=statement_id,
        partner_id=close.partner_id,
        currency=close.currency,
        period_start=start,
        period_end=close.period_end,
        status=status,
        lines=kept,
        total=total,
        carried_over=round_money(carried, close.currency),
        minimum_payout=minimum,
        frequency=close.terms.frequency,
        closed_by=close.closed_by,
        log_position=close.log_position,
        digest=statement_digest(statement_id, close.partner_id, close.currency, close.period_end, kept),
        issued_at=close.issued_at,
    )


LineKey = tuple[LineKind, str]
"""A line's kind and ref: what it pays (a statement pays each at most once)."""

CLAIMING = (StatementStatus.PAYABLE, StatementStatus.PAID)
"""Statements whose lines are claimed: owed or paid to the partner."""


def line_key(line: StatementLine) -> LineKey:
    return line.kind, line.ref


def refusal(issued: StatementIssued, held: Mapping[LineKey, StatementLine]) -> str | None:
    """Why the fold moves no money for ``issued`` (``None``: it is provable). ``held`` is
    what the ledger holds unclaimed, for each line the statement names, as of its period
    end and log position (a line the ledger holds nothing for is absent)."""
    return _shape_refusal(issued) or _lines_refusal(issued, held)


def _shape_refusal(issued: StatementIssued) -> str | None:
    """What is wrong with the statement on its own: its status, digest, total, period."""
    lines, currency = issued.lines, issued.currency
    if issued.status not in (StatementStatus.PAYABLE, StatementStatus.CARRIED_OVER):
        return f"a statement is issued payable or carried over, not {issued.status.value}"
    if not lines:
        return "it has no lines"
    counted = Counter(line_key(line) for line in lines)
    twice = sorted(f"{kind.value} {ref}" for (kind, ref), times in counted.items() if times > 1)
    if twice:
        return f"it states {', '.join(twice)} more than once"
    digest = statement_digest(issued.statement_id, issued.partner_id, currency, issued.period_end, lines)
    if digest != issued.digest:
        return f"its digest {issued.digest} is not the one of its lines ({digest})"
    total = round_money(sum((line.amount for line in lines), ZERO), currency)
    if round_money(issued.total, currency) != total:
        return f"its total {issued.total} is not the sum of its lines ({total})"
    reaches = total >= 0 and total >= issued.minimum_payout
    if reaches != (issued.status is StatementStatus.PAYABLE):
        return (f"it is {issued.status.value} with a total of {total} and a minimum payout of "
                f"{issued.minimum_payout}")
    if issued.period_end > issued.issued_at:
        return f"its period ends ({issued.period_end.isoformat()}) after it was issued"
    return None


SHOWN_LINES = 10
"""Lines a refusal names (each one is judged)."""


def _lines_refusal(issued: StatementIssued, held: Mapping[LineKey, StatementLine]) -> str | None:
    """Every line that is not what the ledger holds for it, said in full."""
    wrong = []
    for line in sorted(issued.lines, key=line_key):
        expected = held.get(line_key(line))
        stated = round_money(line.amount, issued.currency)
        if expected is None:
            wrong.append(f"{line.kind.value} {line.ref} ({stated} {issued.currency}: it holds nothing)")
        elif (expected.amount, expected.offer_id, expected.happened_at) != \
                (stated, line.offer_id, line.happened_at):
            holds = f"{expected.amount}, offer {expected.offer_id}, at {expected.happened_at.isoformat()}"
            wrong.append(f"{line.kind.value} {line.ref} ({stated} {issued.currency}: it holds {holds})")
    if not wrong:
        return None
    more = f" and {len(wrong) - SHOWN_LINES} more" if len(wrong) > SHOWN_LINES else ""
    return ("lines the ledger does not hold unclaimed as of the statement's period end and log position: "
            + "; ".join(wrong[:SHOWN_LINES]) + more)
