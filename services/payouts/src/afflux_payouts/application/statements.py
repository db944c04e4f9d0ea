"""The statement use cases: close billing periods, preview them, re-derive them, hold and
release statements (the tax gate), pay a statement, adjust a balance.

They *decide*; they never move money themselves. A close reads the projection in
one snapshot (its open lines, the partners' billing terms and the log positions it
was folded to), decides each statement (``domain/statements.py``) and records it in
payouts' event store, whose relay publishes it on ``afflux.payouts.v1``; the fold of
that record is what makes its lines payable (once it has judged them provable). So
the ledger stays a fold of the log, and a statement's ``log_position`` says which
records of the attribution and partners logs it was decided from: ``rederive`` asks
the projection the same question again, from the records up to that position, and
compares the digest.

Closes run one at a time (a PostgreSQL advisory lock, across instances), and each
first waits until the fold has caught up with every statement recorded before it,
so a commission is never stated twice. A statement's id is a pure function of its
partner, currency and period end: a close repeated (a retry, a crash before the
answer, the scheduler and an admin at once) issues nothing twice, and a crash
between recording and publishing is re-sent by the relay.

A payable statement of a partner paid in another currency (its billing's ``conversion``)
is recorded with its conversion at the rates recorded (``domain/fx.py``), or, a rate
missing, held with the reason (``missing_rate EUR/USD 2026-12-01``). With the tax gate
on, a close records a payable statement of a partner whose tax and payment profile is
incomplete together with its hold (``domain/holds.py``). ``release_ready`` settles each
held statement again: converts it once its rates are recorded, and releases it once
nothing holds it (or holds it again with the reason left).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from afflux_contracts import (
    BillingConversion,
    BillingFrequency,
    StatementConverted,
    StatementIssued,
    StatementLine,
    minor_units,
    statement_digest,
    utc_now,
)
from afflux_payouts.application.payouts import FOLDED_TOPICS, Payouts
from afflux_payouts.domain.fx import (
    MissingRate,
    RateBook,
    convert_statement,
    needs_conversion,
    reconversion_error,
)
from afflux_payouts.domain.holds import Profile, hold_reason
from afflux_payouts.domain.periods import last_period_end
from afflux_payouts.domain.records import Adjustment, NotPayable, Statement
from afflux_payouts.domain.statement_fold import REFUSED, Standing
from afflux_payouts.domain.statements import Ask, Close, OpenLine, Terms, decide_statement
from afflux_payouts.domain.terms import PartnerTerms

MAX_ADJUSTMENT = Decimal(10) ** 12
SAVE_CHUNK = 250
"""Statements recorded per transaction. Each is independent, so a close that stops half
way is finished by the same close again: the statements recorded are folded, so their
partners count as closed to that period end, and the others are issued then."""
REDERIVE_CHUNK = 500
"""Statements re-derived per query."""


class FutureClose(ValueError):
    """A period end after the current instant: what happens later cannot be stated yet."""


class NotFoldedYet(Exception):
    """The fold has not caught up with the statements recorded before (retry shortly)."""


class UnknownStatement(LookupError):
    pass


class InvalidField(ValueError):
    """A request's value the rules refuse, naming its field (a 422 at the edge)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidAdjustment(InvalidField):
    """An adjustment's amount that is not an exact, non-zero amount of its currency."""


@dataclass(frozen=True)
class Snapshot:
    """What a close decides from, read in one transaction: the open lines, every partner's
    terms, and the positions folded (``topic#partition`` -> last offset)."""

    lines: list[OpenLine]
    terms: dict[str, PartnerTerms]
    positions: dict[str, int]
    profiles: dict[str, Profile] = field(default_factory=dict)
    """Every partner's tax and payment profile payouts knows (the tax gate's)."""
    rates: RateBook = field(default_factory=RateBook)
    """The exchange rates in force (conversions')."""


@dataclass(frozen=True)
class HeldStatement:
    """A statement on hold, with its partner's profile as payouts knows it now."""

    statement_id: str
    partner_id: str
    profile: Profile | None


@dataclass(frozen=True)
class RecordedStatement:
    """A statement as the fold recorded it (``status`` ``refused`` with its ``refusal``)."""

    statement_id: str
    partner_id: str
    currency: str
    period_end: datetime
    log_position: dict[str, int]
    digest: str
    status: str
    refusal: str | None
    recorded_from: str | None
    lines: list[StatementLine]
    conversion: StatementConverted | None = None
    """What the fold recorded of its conversion (None: paid in its own currency)."""


@dataclass(frozen=True)
class Rederived:
    """A statement beside its lines re-derived from the log up to its log position."""

    statement: RecordedStatement
    digest: str
    lines: list[StatementLine]
    conversion_error: str | None = None
    """What is wrong with its conversion, judged from the rates on the log (None: nothing)."""

    @property
    def equal(self) -> bool:
        """The re-derived digest is the statement's, the fold did not refuse it, and its
        conversion (if any) is the one its lines and the rates recorded give."""
        return (self.digest == self.statement.digest and self.statement.status != REFUSED
                and self.conversion_error is None)


class StatementDesk(Protocol):
    """What the statement use cases read and lock."""

    def exclusive(self) -> AbstractContextManager[None]:
        """One close at a time, across every instance."""
        ...

    def snapshot(self, ask: Ask) -> Snapshot: ...

    def open_lines(self, asks: Sequence[Ask]) -> dict[str, list[OpenLine]]: ...

    def all_terms(self) -> list[PartnerTerms]: ...

    def held(self) -> list[HeldStatement]: ...

    def rates(self) -> RateBook: ...

    def recorded_rates(self) -> dict[tuple[str, date], set[Decimal]]:
        """Every rate recorded, per pair (``EUR/USD``) and day."""
        ...

    def unfolded(self) -> int:
        """Statements (and payments) recorded that the fold has not recorded yet."""
        ...

    def standings(self, statement_ids: Sequence[str]) -> dict[str, Standing]: ...

    def recorded(self, statement_id: str | None = None) -> list[RecordedStatement]: ...


class Statements:
    """Close, preview, re-derive, pay and adjust on top of the payouts store."""

    def __init__(self, store: Payouts, *, clock: Callable[[], datetime] = utc_now,
                 fold_timeout: float = 10.0, tax_gate: bool = False) -> None:
        self.store = store
        self.tax_gate = tax_gate
        """Hold each payable statement of a partner whose tax and payment profile is
        incomplete (``AFFLUX_PAYOUTS_TAX_GATE``)."""
        self.desk: StatementDesk = store.desk
        self.clock = clock
        self.fold_timeout = fold_timeout
        self._local = threading.Lock()

    # -- closing -----------------------------------------------------------------------

    def close(self, period_end: datetime, partner_id: str | None = None, *,
              partners: Iterable[str] | None = None, closed_by: str = "admin") -> list[StatementIssued]:
        """Issue the statements of ``period_end``: of ``partner_id`` only (whatever its
        billing), of ``partners`` (the scheduler), or of every partner not billed
        manually. Returns the statements issued now (none for a period closed before)."""
        now = self.clock()
        if period_end > now:
            raise FutureClose(f"period_end {period_end.isoformat()} is in the future (now {now.isoformat()})")
        chosen = {partner_id} if partner_id is not None else (set(partners) if partners is not None else None)
        with self.exclusive():
            self._wait_folded()
            snapshot = self.desk.snapshot(Ask("close", as_of=period_end, partner_id=partner_id))
            issued = list(self._decide(snapshot, period_end, chosen, closed_by, now,
                                       every=partner_id is None and partners is None))
            for start in range(0, len(issued), SAVE_CHUNK):
                chunk = issued[start:start + SAVE_CHUNK]
                self.store.save(*(self._recorded(statement, snapshot) for statement in chunk))
        return issued

    def _recorded(self, issued: StatementIssued, snapshot: Snapshot) -> Statement:
        """The statement's aggregate, converted or held at once as ``_settle`` says (recorded
        with the issue, so no payment can come between)."""
        statement = Statement.issue(issued)
        partner = issued.partner_id
        reason = self._settle(statement, snapshot.terms.get(partner), snapshot.profiles.get(partner),
                              snapshot.rates)
        if reason is not None:
            statement.hold(reason)
        return statement

    def _settle(self, statement: Statement, terms: PartnerTerms | None, profile: Profile | None,
                book: RateBook) -> str | None:
        """Convert the statement if its partner is paid in another currency and the rates are
        recorded; the reason it is held (a missing rate, else the tax gate's), None if none."""
        issued = statement.issued
        if terms is not None and terms.paid_in is not None and statement.converted is None:
            conversion = BillingConversion(terms.conversion)
            if needs_conversion(issued, terms.paid_in, conversion):
                try:
                    converted = convert_statement(issued, terms.paid_in, conversion, book, self.clock())
                    statement.convert(converted)
                except MissingRate as missing:
                    return missing.reason
        return hold_reason(profile) if self.tax_gate else None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One decision at a time (a close, a payment run), in this process and across
        instances."""
        with self._local, self.desk.exclusive():
            yield

    def close_due(self) -> list[StatementIssued]:
        """The scheduler's round: close each billed partner's last period its frequency ended
        (partners whose billing is manual, or unknown to payouts, are left to admins)."""
        now = self.clock()
        due: dict[datetime, set[str]] = defaultdict(set)
        for terms in self.desk.all_terms():
            if terms.frequency is None:
                continue
            end = last_period_end(BillingFrequency(terms.frequency), now)
            if end is not None:
                due[end].add(terms.partner_id)
        issued: list[StatementIssued] = []
        for end, partners in sorted(due.items()):
            issued += self.close(end, partners=partners, closed_by="schedule")
        return issued

    def preview(self, partner_id: str, as_of: datetime | None = None,
                as_known_on: datetime | None = None) -> list[StatementIssued]:
        """The statements a close of ``partner_id`` at ``as_of`` (default: now) would issue,
        from the records known on ``as_known_on`` (default: every one); nothing is recorded.
        The partner's billing terms are the current ones."""
        now = self.clock()
        moment = as_of or now
        snapshot = self.desk.snapshot(Ask("preview", as_of=moment, partner_id=partner_id, known=as_known_on))
        return list(self._decide(snapshot, moment, {partner_id}, "preview", now, every=False))

    def _decide(self, snapshot: Snapshot, period_end: datetime, chosen: set[str] | None, closed_by: str,
                now: datetime, *, every: bool) -> Iterator[StatementIssued]:
        lines: dict[tuple[str, str], list[StatementLine]] = defaultdict(list)
        starts: dict[tuple[str, str], datetime] = {}
        for found in snapshot.lines:
            key = (found.partner_id, found.currency)
            lines[key].append(found.line)
            if found.period_start is not None:
                starts[key] = found.period_start
        positions = {name: offset for name, offset in snapshot.positions.items()
                     if name.rpartition("#")[0] in FOLDED_TOPICS}
        for (partner, currency), stated in lines.items():
            known = snapshot.terms.get(partner)
            terms = known.for_close if known is not None else Terms()
            if chosen is not None and partner not in chosen:
                continue
            if every and terms.frequency == BillingFrequency.MANUAL.value:
                continue
            start = starts.get((partner, currency))
            if start is not None and start >= period_end:
                continue  # closed up to there already: later lines wait for a later period
            close = Close(partner_id=partner, currency=currency, period_end=period_end, period_start=start,
                          terms=terms, closed_by=closed_by, log_position=positions, issued_at=now)
            statement = decide_statement(close, stated)
            if statement is not None:
                if closed_by != "schedule":
                    statement = statement.model_copy(update={"frequency": None})
                yield statement

    # -- re-deriving ---------------------------------------------------------------------

    def rederive(self, statement_id: str | None = None) -> list[Rederived]:
        """Each statement folded (or the one named) beside its lines re-derived with the close
        rules from the records up to its log position (and the statements recorded before
        it): what anyone can do with the log alone. Run on a fold of the log (a replay),
        this proves every statement; on the live projection it checks the live rows."""
        recorded = self.desk.recorded(statement_id)
        rates = self.desk.recorded_rates() if any(s.conversion for s in recorded) else {}
        found: list[Rederived] = []
        for start in range(0, len(recorded), REDERIVE_CHUNK):
            chunk = recorded[start:start + REDERIVE_CHUNK]
            asks = [Ask(s.statement_id, as_of=s.period_end, partner_id=s.partner_id, currency=s.currency,
                        positions=s.log_position, before=s.recorded_from or "") for s in chunk]
            open_lines = self.desk.open_lines(asks)
            for statement in chunk:
                lines = [o.line for o in open_lines.get(statement.statement_id, [])]
                digest = statement_digest(statement.statement_id, statement.partner_id, statement.currency,
                                          statement.period_end, lines)
                found.append(Rederived(statement, digest, lines, _conversion_error(statement, rates)))
        return found

    # -- folding -------------------------------------------------------------------------

    def unfolded(self) -> int:
        return self.desk.unfolded()

    def wait_folded(self, timeout: float | None = None) -> bool:
        """Wait until the fold shows every statement and payment recorded so far."""
        deadline = time.monotonic() + (self.fold_timeout if timeout is None else timeout)
        while self.unfolded() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _wait_folded(self) -> None:
        if not self.wait_folded():
            raise NotFoldedYet("payouts has not folded the statements it issued before yet: retry shortly")

    # -- holds -------------------------------------------------------------------------------

    def release_ready(self) -> list[str]:
        """Settle every held statement again (``_settle``): release those nothing holds now
        (the ids released), convert those whose rates arrived, hold again with a new reason;
        a statement released or paid meanwhile is left as it is."""
        held = self.desk.held()
        if not held:
            return []
        terms = {found.partner_id: found for found in self.desk.all_terms()}
        book = self.desk.rates()
        released = []
        for found in held:
            statement = self.statement(found.statement_id)
            if not statement.on_hold:
                continue
            reason = self._settle(statement, terms.get(found.partner_id), found.profile, book)
            if reason is None:
                statement.release()
            else:
                statement.hold(reason)
            if not statement.pending_events:
                continue
            try:
                self.store.save(statement)
            except IntegrityError:
                continue  # changed concurrently: the next round sees it as it is now
            if reason is None:
                released.append(found.statement_id)
        return released

    # -- paying and adjusting ---------------------------------------------------------------

    def pay(self, statement_id: str, reference: str | None) -> Statement:
        """Mark a payable statement paid (``NotPayable`` if paid already or carried over)."""
        for _attempt in range(3):
            statement = self.statement(statement_id)
            standing = self.desk.standings([statement_id]).get(statement_id)
            if standing is not None and standing.status == REFUSED:
                raise NotPayable(f"statement {statement_id} was refused by the fold: it pays nothing")
            statement.pay(reference)
            try:
                self.store.save(statement)
            except IntegrityError:
                continue  # paid concurrently: the next attempt finds it paid
            return statement
        raise NotPayable(f"statement {statement_id} is being paid concurrently")

    def statement(self, statement_id: str) -> Statement:
        """The statement's aggregate (``UnknownStatement`` if none)."""
        try:
            statement: Statement = self.store.repository.get(Statement.create_id(statement_id))
        except AggregateNotFoundError as error:
            raise UnknownStatement(f"no statement {statement_id}") from error
        return statement

    def adjust(self, partner_id: str, amount: str, currency: str, reason: str,
               note: str | None) -> dict[str, Any]:
        """Record an adjustment of ``amount`` (signed, exact in the currency's minor unit)."""
        exact = _exact_amount(amount, currency)
        adjustment_id = "adj_" + secrets.token_hex(12)
        made = Adjustment.make(adjustment_id, partner_id, currency, format(exact, "f"), reason, note)
        self.store.save(made)
        return {"adjustment_id": adjustment_id, "partner_id": partner_id, "currency": currency,
                "amount": format(exact, "f"), "reason": reason, "note": note}


def _conversion_error(statement: RecordedStatement,
                      rates: Mapping[tuple[str, date], set[Decimal]]) -> str | None:
    """Its recorded conversion re-derived from its lines and the rates on the log."""
    if statement.conversion is None:
        return None
    originals = {(line.kind.value, line.ref): line.amount for line in statement.lines}
    return reconversion_error(statement.conversion, originals, rates)


def _exact_amount(amount: str, currency: str) -> Decimal:
    try:
        value = Decimal(amount)
    except InvalidOperation as error:
        raise InvalidAdjustment("amount", f"amount {amount!r} is not a decimal number") from error
    if not value.is_finite() or value == 0 or abs(value) >= MAX_ADJUSTMENT:
        raise InvalidAdjustment("amount", f"an adjustment is a non-zero amount under {MAX_ADJUSTMENT:,}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > minor_units(currency):
        raise InvalidAdjustment("amount", f"{amount} is not an exact amount of {currency} "
                                          f"(at most {minor_units(currency)} decimal places)")
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)))
