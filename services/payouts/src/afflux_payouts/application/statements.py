"""The statement use cases: close billing periods, pay a statement, adjust a balance.

They *decide*; they never move money themselves. A close reads the projection in
one snapshot (its unclaimed lines, the partners' billing terms and the log
positions it was folded to), decides each statement (``domain/statements.py``)
and records it in payouts' event store, whose relay publishes it on
``afflux.payouts.v1``; the fold of that record is what makes its lines payable. So
the ledger stays a fold of the log, and a statement's ``log_position`` says which
records of the attribution and partners logs it was decided from.

Closes run one at a time (a PostgreSQL advisory lock, across instances), and each
first waits until the fold has caught up with every statement recorded before it,
so a commission is never claimed by two statements. A statement's id is a pure
function of its partner, currency and period end: a close repeated (a retry, a
crash before the answer, the scheduler and an admin at once) issues nothing twice,
and a crash between recording and publishing is re-sent by the relay.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from psycopg import Cursor
from psycopg.rows import DictRow

from afflux_contracts import (
    BillingFrequency,
    LineKind,
    StatementIssued,
    StatementLine,
    minor_units,
    statement_digest,
    utc_now,
)
from afflux_payouts.adapters import statements_sql
from afflux_payouts.application.payouts import FOLDED_TOPICS, INFINITY, Payouts
from afflux_payouts.domain.periods import last_period_end
from afflux_payouts.domain.records import Adjustment, NotPayable, Statement
from afflux_payouts.domain.statements import Close, Terms, decide_statement

CLOSE_LOCK = "afflux-payouts-statement-close"
MAX_ADJUSTMENT = Decimal(10) ** 12
SAVE_CHUNK = 250
"""Statements recorded per transaction. Each is independent, so a close that stops half
way is finished by the same close again: the statements recorded are folded, so their
partners count as closed to that period end, and the others are issued then."""


class FutureClose(ValueError):
    """A period end after the current instant: what happens later cannot be stated yet."""


class NotFoldedYet(Exception):
    """The fold has not caught up with the statements recorded before (retry shortly)."""


class UnknownStatement(LookupError):
    pass


class InvalidAdjustment(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Snapshot:
    """What a close decides from, read in one transaction."""

    lines: dict[tuple[str, str], list[StatementLine]]
    period_starts: dict[tuple[str, str], datetime]
    terms: dict[str, Terms]
    log_position: dict[str, int]


class Statements:
    """Close, pay and adjust on top of the payouts store."""

    def __init__(self, store: Payouts, *, clock: Callable[[], datetime] = utc_now,
                 fold_timeout: float = 10.0) -> None:
        self.store = store
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
        with self._exclusive():
            self._wait_folded()
            snapshot = self._snapshot(period_end, partner_id)
            issued = list(self._decide(snapshot, period_end, chosen, closed_by, now,
                                       every=partner_id is None and partners is None))
            for start in range(0, len(issued), SAVE_CHUNK):
                chunk = issued[start:start + SAVE_CHUNK]
                self.store.save(*(Statement.issue(statement) for statement in chunk))
        return issued

    def close_due(self) -> list[StatementIssued]:
        """The scheduler's round: close each billed partner's last period its frequency ended
        (partners whose billing is manual, or unknown to payouts, are left to admins)."""
        now = self.clock()
        due: dict[datetime, set[str]] = defaultdict(set)
        for row in self.store.query(statements_sql.select_terms(self.store.schema)):
            if row["frequency"] is None:
                continue
            end = last_period_end(BillingFrequency(row["frequency"]), now)
            if end is not None:
                due[end].add(row["partner_id"])
        issued: list[StatementIssued] = []
        for end, partners in sorted(due.items()):
            issued += self.close(end, partners=partners, closed_by="schedule")
        return issued

    def _decide(self, snapshot: Snapshot, period_end: datetime, chosen: set[str] | None, closed_by: str,
                now: datetime, *, every: bool) -> Iterator[StatementIssued]:
        for (partner, currency), lines in snapshot.lines.items():
            terms = snapshot.terms.get(partner, Terms())
            if chosen is not None and partner not in chosen:
                continue
            if every and terms.frequency == BillingFrequency.MANUAL.value:
                continue
            start = snapshot.period_starts.get((partner, currency))
            if start is not None and start >= period_end:
                continue  # closed up to there already: later lines wait for a later period
            close = Close(partner_id=partner, currency=currency, period_end=period_end, period_start=start,
                          terms=terms, closed_by=closed_by, log_position=snapshot.log_position, issued_at=now)
            statement = decide_statement(close, lines)
            if statement is not None:
                if closed_by != "schedule":
                    statement = statement.model_copy(update={"frequency": None})
                yield statement

    def rederived_digest(self, issued: StatementIssued) -> str:
        """The digest of the lines this store would state for ``issued``'s partner, currency and
        period: on a projection folded up to ``issued.log_position`` (a replay stopped there) it
        is ``issued.digest``, which is how anyone re-derives a statement from the log."""
        snapshot = self._snapshot(issued.period_end, issued.partner_id)
        lines = snapshot.lines.get((issued.partner_id, issued.currency), [])
        kept = [line for line in lines if line.amount != 0]
        return statement_digest(issued.statement_id, issued.partner_id, issued.currency, issued.period_end,
                                kept)

    def _snapshot(self, period_end: datetime, partner_id: str | None) -> Snapshot:
        schema = self.store.schema
        params = {"as_of": period_end, "known": INFINITY, "partner": partner_id}
        with self._repeatable_read() as curs:
            curs.execute(statements_sql.select_positions(self._tracking_table()))
            positions = {row["application_name"]: int(row["last"]) for row in curs.fetchall()
                         if row["application_name"].split("#")[0] in FOLDED_TOPICS}
            curs.execute(statements_sql.select_open_lines(schema, one_partner=partner_id is not None), params)
            rows = curs.fetchall()
            curs.execute(statements_sql.select_terms(schema))
            terms = {row["partner_id"]: _terms(row) for row in curs.fetchall()}
        lines: dict[tuple[str, str], list[StatementLine]] = defaultdict(list)
        starts: dict[tuple[str, str], datetime] = {}
        for row in rows:
            key = (row["partner_id"], row["currency"])
            lines[key].append(StatementLine(kind=LineKind(row["kind"]), ref=row["ref"],
                                            offer_id=row["offer_id"], happened_at=row["happened_at"],
                                            amount=row["amount"]))
            if row["period_start"] is not None:
                starts[key] = row["period_start"]
        return Snapshot(dict(lines), starts, terms, positions)

    def _tracking_table(self) -> Any:
        recorder = self.store.tracked_recorder
        return self.store.table(recorder.tracking_table_name)

    @contextmanager
    def _repeatable_read(self) -> Iterator[Cursor[DictRow]]:
        with self.store.tracked_recorder.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield curs

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One close at a time in this process, and across processes (an advisory lock held
        by a transaction that stays open while the statements are recorded)."""
        with self._local, self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            # The lock's transaction idles while the close works on other connections: a long
            # close must not have it ended by the store's idle-in-transaction timeout.
            curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{CLOSE_LOCK}:{self.store.schema}",))
            yield

    # -- folding -------------------------------------------------------------------------

    def unfolded(self) -> int:
        recorder = self.store.tracked_recorder
        statement = statements_sql.count_unfolded(self.store.table(recorder.events_table_name),
                                                  self.store.table("statements"))
        return int(self.store.query(statement)[0]["unfolded"])

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

    # -- paying and adjusting ---------------------------------------------------------------

    def pay(self, statement_id: str, reference: str | None) -> StatementIssued:
        """Mark a payable statement paid (``NotPayable`` if paid already or carried over)."""
        for _attempt in range(3):
            statement = self._statement(statement_id)
            statement.pay(reference)
            try:
                self.store.save(statement)
            except IntegrityError:
                continue  # paid concurrently: the next attempt finds it paid
            return statement.issued
        raise NotPayable(f"statement {statement_id} is being paid concurrently")

    def _statement(self, statement_id: str) -> Statement:
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


def _terms(row: dict[str, Any]) -> Terms:
    return Terms(currency=row["billing_currency"], minimum_payout=row["minimum_payout"] or Decimal(0),
                 frequency=row["frequency"])


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
