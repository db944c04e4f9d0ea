"""Statements in PostgreSQL: what is open for a close, a preview or a judgement (one query
for many questions), the fold's batch writes, and the close's consistent snapshot.

``StatementsSql`` is the ``StatementBooks`` of the fold (``application/statement_fold.py``)
and the ``StatementDesk`` of the use cases (``application/statements.py``).

What is open is a sum of facts: per commission what it earned (its latest change that
happened by the moment asked: accrued amount, else 0) less what claiming statements
(payable, paid) claimed of it; per adjustment its amount less its claims. Being sums,
they do not depend on the order the three logs were folded in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import Cursor, sql
from psycopg.rows import DictRow

from afflux_contracts import (
    ConvertedLine,
    InvoiceIssued,
    LineKind,
    StatementConverted,
    StatementLine,
    round_money,
)
from afflux_payouts.adapters.tables import (
    ADJUSTMENTS,
    CHANGES,
    FX_RATES,
    INVOICES,
    LINES,
    PROFILES,
    RUN_PAYMENTS,
    RUNS,
    STATEMENTS,
)
from afflux_payouts.adapters.terms_sql import profile_of_row, terms_of_row
from afflux_payouts.application.statements import HeldStatement, RecordedStatement, Snapshot
from afflux_payouts.domain.fx import Rate, RateBook
from afflux_payouts.domain.records import STATEMENT_ISSUED, STATEMENT_PAID
from afflux_payouts.domain.statement_fold import Folded, Standing, Stated
from afflux_payouts.domain.statements import Ask, OpenLine
from afflux_payouts.domain.terms import PartnerTerms
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import json_rows, keys_param

CLOSE_LOCK = "afflux-payouts-statement-close"
STANDING = ("statement_id", "partner_id", "currency", "status", "total", "digest", "paid_currency",
            "paid_total")
CONVERTED = ("paid_currency", "paid_total")
LINE_CONVERTED = ("paid_amount", "rate_pair", "rate", "rate_day")
PAID = ("status", "paid_at", "paid_known_on", "reference", "payment_failure")
RUN_DONE = ("status", "confirmed_at")
RUN_PAYMENT = ("status", "reason")
HOLD = ("status", "hold_reason")
SHAPE = ("partner_id", "currency", "known", "positions", "before", "refs")
"""The optional fields of an ``Ask``: asks answered together set the same ones."""


class StatementsSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    # -- what is open ------------------------------------------------------------------

    def open_lines(self, asks: Sequence[Ask]) -> dict[str, list[OpenLine]]:
        """Per ask (by key), every line open for it, by partner, currency, kind and ref."""
        if not asks:
            return {}
        rows = self.store.query(*_open_lines_query(self.store.schema, asks))
        return _by_ask(rows)

    # -- the fold's books ----------------------------------------------------------------

    def standings(self, statement_ids: Sequence[str]) -> dict[str, Standing]:
        rows = self.store.query(STATEMENTS.select(self.store.schema, columns=STANDING),
                                keys_param(statement_ids, ("statement_id",)))
        return {row["statement_id"]: Standing(**row) for row in rows}

    def applied(self, partitions: Sequence[str]) -> dict[str, int]:
        rows = self.store.query(_select_applied(self._tracking_table()), (list(partitions),))
        return {row["name"]: int(row["last"]) for row in rows if row["last"] is not None}

    def writes(self, folded: Folded) -> list[Write]:
        schema = self.store.schema
        stated = list(folded.stated.values())
        found = [
            STATEMENTS.write(STATEMENTS.upsert(schema, UPDATED), (_statement_row(s) for s in stated)),
            LINES.write(LINES.delete(schema, ("statement_id",)),
                        ({"statement_id": s.issued.statement_id} for s in stated if s.replaces)),
            LINES.write(LINES.insert(schema), (
                {"statement_id": s.issued.statement_id, "kind": line.kind, "ref": line.ref,
                 "partner_id": s.issued.partner_id, "currency": s.issued.currency, "offer_id": line.offer_id,
                 "happened_at": line.happened_at, "amount": round_money(line.amount, s.issued.currency)}
                for s in stated for line in s.issued.lines)),
            *_conversion_writes(schema, folded),
            STATEMENTS.write(STATEMENTS.update(schema, PAID), (
                {"statement_id": paid.statement_id, "status": "paid", "paid_at": paid.paid_at,
                 "paid_known_on": source.known_on, "reference": paid.reference, "payment_failure": None}
                for paid, source in folded.payments)),
            STATEMENTS.write(STATEMENTS.update(schema, ("payment_failure",)), (
                {"statement_id": failed.statement_id, "payment_failure": failed.reason}
                for failed, _ in folded.failures)),
            *_run_writes(schema, folded),
            INVOICES.write(INVOICES.insert(schema), (_invoice_row(invoice, source.event_id)
                                                      for invoice, source in folded.invoices)),
            STATEMENTS.write(STATEMENTS.update(schema, HOLD), (
                {"statement_id": statement_id, "status": "payable" if reason is None else "on_hold",
                 "hold_reason": reason} for statement_id, reason in folded.holds.items())),
            ADJUSTMENTS.write(ADJUSTMENTS.insert(schema), (
                {"adjustment_id": a.adjustment_id, "partner_id": a.partner_id, "currency": a.currency,
                 "amount": round_money(a.amount, a.currency), "reason": a.reason, "note": a.note,
                 "happened_at": a.adjusted_at, "known_on": source.known_on, "event_id": source.event_id,
                 "log_offset": source.log_offset, "recorded_from": source.recorded_from}
                for a, source in folded.adjustments)),
        ]
        return [write for write in found if write is not None]

    # -- the desk's ----------------------------------------------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One close at a time across processes: an advisory lock held by a transaction that
        stays open while the close records its statements (on other connections)."""
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            # The lock's transaction idles while the close works: a long close must not have
            # it ended by the store's idle-in-transaction timeout.
            curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{CLOSE_LOCK}:{self.store.schema}",))
            yield

    def snapshot(self, ask: Ask) -> Snapshot:
        """What a close decides from, in one database snapshot: the positions folded, the
        lines open for ``ask`` and every partner's terms."""
        with self._repeatable_read() as curs:
            curs.execute(_select_positions(self._tracking_table()))
            positions = {row["application_name"]: int(row["last"]) for row in curs.fetchall()}
            curs.execute(*_open_lines_query(self.store.schema, [ask]))
            lines = _by_ask(curs.fetchall()).get(ask.key, [])
            curs.execute(_select_terms(self.store.schema))
            terms = {row["partner_id"]: terms_of_row(row) for row in curs.fetchall()}
            curs.execute(_select_profiles(self.store.schema))
            profiles = {row["partner_id"]: profile_of_row(row) for row in curs.fetchall()}
            curs.execute(_select_rates(self.store.schema))
            rates = RateBook.of(_rate(row) for row in curs.fetchall())
        return Snapshot(lines, terms, positions, profiles, rates)

    def rates(self) -> RateBook:
        """The rates in force: the last recorded of each pair and day."""
        return RateBook.of(_rate(row) for row in self.store.query(_select_rates(self.store.schema)))

    def recorded_rates(self) -> dict[tuple[str, date], set[Decimal]]:
        """Every rate ever recorded, per pair and day (what a conversion may name)."""
        found: dict[tuple[str, date], set[Decimal]] = defaultdict(set)
        for row in self.store.query(_select_all_rates(self.store.schema)):
            found[(f"{row['base']}/{row['quote']}", row["day"])].add(row["rate"])
        return dict(found)

    def held(self) -> list[HeldStatement]:
        """Every held statement, with whether its partner's profile is complete now."""
        rows = self.store.query(_select_held(self.store.schema))
        return [HeldStatement(row["held_id"], row["held_partner"],
                              profile_of_row(row) if row["partner_id"] is not None else None) for row in rows]

    def all_terms(self) -> list[PartnerTerms]:
        return [terms_of_row(row) for row in self.store.query(_select_terms(self.store.schema))]

    def unfolded(self) -> int:
        """Statements this store issued (or paid) that its fold has not caught up with yet."""
        recorder = self.store.tracked_recorder
        statement = _count_unfolded(self.store.table(recorder.events_table_name),
                                    STATEMENTS.ident(self.store.schema))
        return int(self.store.query(statement, (STATEMENT_ISSUED, STATEMENT_PAID))[0]["unfolded"])

    def recorded(self, statement_id: str | None = None) -> list[RecordedStatement]:
        """The statements folded (or the one named), as the fold recorded them."""
        rows = self.store.query(_select_recorded(self.store.schema, one=statement_id is not None),
                                (statement_id,) if statement_id is not None else ())
        return [RecordedStatement(
            statement_id=row["statement_id"], partner_id=row["partner_id"], currency=row["currency"],
            period_end=row["period_end"], log_position=json.loads(row["log_position"]), digest=row["digest"],
            status=row["status"], refusal=row["refusal"], recorded_from=row["recorded_from"],
            lines=[_line(line) for line in row["lines"] or []], conversion=_conversion(row)) for row in rows]

    @contextmanager
    def _repeatable_read(self) -> Iterator[Cursor[DictRow]]:
        with self.store.tracked_recorder.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield curs

    def _tracking_table(self) -> sql.Identifier:
        return self.store.table(self.store.tracked_recorder.tracking_table_name)


UPDATED = tuple(name for name in STATEMENTS.column_names if name != "statement_id")


def _invoice_row(invoice: InvoiceIssued, event_id: UUID) -> dict[str, Any]:
    figures = {name: round_money(getattr(invoice, name), invoice.currency)
               for name in ("net", "vat", "total")}
    return {**invoice.model_dump(mode="json", exclude=set(figures)), **figures, "event_id": event_id}


def _conversion_writes(schema: str, folded: Folded) -> list[Write | None]:
    """Conversions (after the statements and lines they convert are written) and rates."""
    return [
        STATEMENTS.write(STATEMENTS.update(schema, CONVERTED), (
            {"statement_id": c.statement_id, "paid_currency": c.paid_currency,
             "paid_total": round_money(c.total, c.paid_currency)} for c, _ in folded.conversions)),
        LINES.write(LINES.update(schema, LINE_CONVERTED), (
            {"statement_id": c.statement_id, "kind": line.kind, "ref": line.ref,
             "paid_amount": round_money(line.amount, c.paid_currency), "rate_pair": line.pair,
             "rate": line.rate, "rate_day": line.rate_day}
            for c, _ in folded.conversions for line in c.lines)),
        FX_RATES.write(FX_RATES.insert(schema), (
            {"event_id": source.event_id, "base": rate.base, "quote": rate.quote, "day": rate.day,
             "rate": rate.rate, "source": rate.source, "set_at": rate.set_at, "known_on": source.known_on,
             "log_offset": source.log_offset, "recorded_from": source.recorded_from}
            for rate, source in folded.rates)),
    ]


def _run_writes(schema: str, folded: Folded) -> list[Write | None]:
    """Runs and their payments. A run's records and its statements' are on different
    partitions, so a payment's row may come before the run's: the run's rows never
    replace it (``skip_existing``), the payment's always do."""
    outcomes = [{"payment_run_id": paid.payment_run_id, "statement_id": paid.statement_id,
                 "partner_id": paid.partner_id, "currency": paid.currency,
                 "amount": round_money(paid.amount, paid.currency), "status": "paid", "reason": None}
                for paid, _ in folded.payments if paid.payment_run_id is not None]
    outcomes += [{"payment_run_id": f.payment_run_id, "statement_id": f.statement_id,
                  "partner_id": f.partner_id, "currency": f.currency,
                  "amount": round_money(f.amount, f.currency), "status": "failed", "reason": f.reason}
                 for f, _ in folded.failures]
    return [
        RUNS.write(RUNS.insert(schema), (
            {"payment_run_id": run.payment_run_id, "method": run.method.value, "status": "open",
             "due_by": run.due_by, "created_at": run.created_at, "confirmed_at": None,
             "event_id": source.event_id} for run, source in folded.runs)),
        RUN_PAYMENTS.write(RUN_PAYMENTS.insert(schema), (
            {"payment_run_id": run.payment_run_id, "statement_id": p.statement_id, "partner_id": p.partner_id,
             "currency": p.currency, "amount": round_money(p.amount, p.currency), "status": "pending",
             "reason": None} for run, _ in folded.runs for p in run.payments)),
        RUNS.write(RUNS.update(schema, RUN_DONE), (
            {"payment_run_id": done.payment_run_id, "status": "confirmed", "confirmed_at": done.confirmed_at}
            for done, _ in folded.confirmations)),
        RUN_PAYMENTS.write(RUN_PAYMENTS.upsert(schema, RUN_PAYMENT), outcomes),
    ]


def _statement_row(stated: Stated) -> dict[str, Any]:
    issued, source, currency = stated.issued, stated.source, stated.issued.currency
    return {
        "statement_id": issued.statement_id, "partner_id": issued.partner_id, "currency": currency,
        "period_start": issued.period_start, "period_end": issued.period_end, "status": stated.status,
        "total": round_money(issued.total, currency),
        "carried_over": round_money(issued.carried_over, currency),
        "minimum_payout": issued.minimum_payout, "frequency": issued.frequency, "closed_by": issued.closed_by,
        "log_position": json.dumps(issued.log_position, sort_keys=True, separators=(",", ":")),
        "digest": issued.digest, "issued_at": issued.issued_at, "known_on": source.known_on,
        "event_id": source.event_id, "paid_at": None, "paid_known_on": None, "reference": None,
        "refusal": stated.refusal, "log_offset": source.log_offset, "recorded_from": source.recorded_from,
        "hold_reason": None, "payment_failure": None, "paid_currency": None, "paid_total": None,
    }


def _conversion(row: Mapping[str, Any]) -> StatementConverted | None:
    """The conversion the fold recorded of a statement (its lines' paid amounts and rates)."""
    if row["paid_currency"] is None:
        return None
    lines = [ConvertedLine(kind=LineKind(line["kind"]), ref=line["ref"], original=line["amount"],
                           amount=line["paid_amount"], pair=line["rate_pair"], rate=line["rate"],
                           rate_day=line["rate_day"]) for line in row["lines"] or []]
    return StatementConverted(statement_id=row["statement_id"], partner_id=row["partner_id"],
                              currency=row["currency"], paid_currency=row["paid_currency"],
                              total=row["paid_total"], lines=tuple(lines), converted_at=row["issued_at"])


def _line(row: Mapping[str, Any]) -> StatementLine:
    return StatementLine(kind=LineKind(row["kind"]), ref=row["ref"], offer_id=row["offer_id"],
                         happened_at=row["happened_at"], amount=row["amount"])


def _by_ask(rows: Sequence[DictRow]) -> dict[str, list[OpenLine]]:
    found: dict[str, list[OpenLine]] = defaultdict(list)
    for row in rows:
        line = OpenLine(row["partner_id"], row["currency"], _line(row), row["period_start"])
        found[row["ask_id"]].append(line)
    return dict(found)


# -- statements ----------------------------------------------------------------------------------


def _open_lines_query(schema: str, asks: Sequence[Ask]) -> tuple[sql.Composed, tuple[str]]:
    shape = tuple(getattr(asks[0], name) is not None for name in SHAPE)
    if any(tuple(getattr(ask, name) is not None for name in SHAPE) != shape for ask in asks):
        raise ValueError("asks answered together narrow by the same fields")
    rows = [{"ask_id": ask.key, "as_of": ask.as_of, "partner_id": ask.partner_id, "currency": ask.currency,
             "known": ask.known, "positions": dict(ask.positions) if ask.positions is not None else None,
             "before": ask.before, "refs": list(ask.refs) if ask.refs is not None else None} for ask in asks]
    return _open_lines(schema, shape), (json_rows(rows),)


def _narrowed(alias: str, shape: tuple[bool, ...], *, ref: str | None = None, positions: bool = False,
              before: bool = False) -> str:
    """The conditions ``shape`` puts on a table (aliased ``alias``) for each ask."""
    partner, currency, known, by_position, by_before, by_refs = shape
    found = []
    if partner:
        found.append(f"{alias}.partner_id = ask.partner_id")
    if currency:
        found.append(f"{alias}.currency = ask.currency")
    if known:
        found.append(f"{alias}.known_on <= ask.known")
    if by_position and positions:
        found.append(f"{alias}.log_offset <= "
                     f"(ask.positions ->> split_part({alias}.recorded_from, '@', 1))::bigint")
    if by_before and before:
        found.append(f"split_part({alias}.recorded_from, '@', 1) = split_part(ask.before, '@', 1) "
                     f"AND {alias}.log_offset < split_part(ask.before, '@', 2)::bigint")
    if by_refs and ref is not None:
        found.append(f"ask.refs ? {alias}.{ref}")
    return "".join(f" AND {condition}" for condition in found)


@cache
def _open_lines(schema: str, shape: tuple[bool, ...]) -> sql.Composed:
    """Every line open for each ask (one JSON parameter of asks): see the module docstring.
    A ``positions`` ask counts the changes and adjustments up to them; a ``before`` ask
    the statements recorded before that place in its partition; a ``refs`` ask only those
    lines."""
    by_refs = shape[5]
    lines_join = " JOIN ask ON ask.ask_id = k.ask_id AND ask.refs ? l.ref" if by_refs else ""
    template = (
        "WITH ask AS (SELECT * FROM json_to_recordset(%s::json) AS a(ask_id text, as_of timestamptz, "
        "  partner_id text, currency text, known timestamptz, positions jsonb, before text, refs jsonb)), "
        "state AS (SELECT DISTINCT ON (ask.ask_id, c.conversion_id) ask.ask_id, c.conversion_id, "
        "  c.partner_id, c.offer_id, c.currency, c.status, c.amount, c.happened_at FROM ask JOIN {changes} c "
        "  ON c.happened_at <= ask.as_of" + _narrowed("c", shape, ref="conversion_id", positions=True)
        + "  ORDER BY ask.ask_id, c.conversion_id, c.log_offset DESC), "
        "counted AS (SELECT ask.ask_id, s.statement_id, s.partner_id, s.currency, s.status, s.period_end "
        "  FROM ask JOIN {statements} s ON s.status <> 'refused'" + _narrowed("s", shape, before=True) + "), "
        "claimed AS (SELECT k.ask_id, l.kind, l.ref, l.partner_id, l.currency, sum(l.amount) AS amount, "
        "  max(l.offer_id) AS offer_id, max(l.happened_at) AS happened_at FROM counted k "
        "  JOIN {lines} l ON l.statement_id = k.statement_id" + lines_join
        + "  WHERE k.status IN ('payable', 'on_hold', 'paid') "
        "  GROUP BY k.ask_id, l.kind, l.ref, l.partner_id, l.currency), "
        "earned AS (SELECT ask_id, 'commission' AS kind, conversion_id AS ref, partner_id, currency, "
        "  offer_id, happened_at, CASE WHEN status = 'accrued' THEN amount ELSE 0 END AS amount FROM state "
        "  UNION ALL SELECT ask.ask_id, 'adjustment', a.adjustment_id, a.partner_id, a.currency, NULL, "
        "  a.happened_at, a.amount FROM ask JOIN {adjustments} a ON a.happened_at <= ask.as_of"
        + _narrowed("a", shape, ref="adjustment_id", positions=True) + "), "
        "open AS (SELECT coalesce(e.ask_id, c.ask_id) AS ask_id, coalesce(e.kind, c.kind) AS kind, "
        "  coalesce(e.ref, c.ref) AS ref, coalesce(e.partner_id, c.partner_id) AS partner_id, "
        "  coalesce(e.currency, c.currency) AS currency, coalesce(e.offer_id, c.offer_id) AS offer_id, "
        "  coalesce(e.happened_at, c.happened_at) AS happened_at, "
        "  coalesce(e.amount, 0) - coalesce(c.amount, 0) AS amount "
        "  FROM earned e FULL JOIN claimed c ON c.ask_id = e.ask_id AND c.kind = e.kind AND c.ref = e.ref), "
        "last AS (SELECT ask_id, partner_id, currency, max(period_end) AS period_start FROM counted "
        "  GROUP BY ask_id, partner_id, currency) "
        "SELECT o.*, last.period_start FROM open o LEFT JOIN last USING (ask_id, partner_id, currency) "
        "WHERE o.amount <> 0 ORDER BY o.ask_id, o.partner_id, o.currency, o.kind, o.ref"
    )
    return sql.SQL(template).format(changes=CHANGES.ident(schema), statements=STATEMENTS.ident(schema),
                                    lines=LINES.ident(schema), adjustments=ADJUSTMENTS.ident(schema))


@cache
def _select_profiles(schema: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM {} ORDER BY partner_id").format(PROFILES.ident(schema))


@cache
def _select_held(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT s.statement_id AS held_id, s.partner_id AS held_partner, p.* FROM {} s "
        "LEFT JOIN {} p ON p.partner_id = s.partner_id WHERE s.status = 'on_hold' ORDER BY s.statement_id"
    ).format(STATEMENTS.ident(schema), PROFILES.ident(schema))


@cache
def _select_rates(schema: str) -> sql.Composed:
    """The last rate recorded of each pair and day, in an order ``RateBook.of`` may take."""
    return sql.SQL(
        "SELECT DISTINCT ON (base, quote, day) base, quote, day, rate FROM {} "
        "ORDER BY base, quote, day, log_offset DESC"
    ).format(FX_RATES.ident(schema))


@cache
def _select_all_rates(schema: str) -> sql.Composed:
    return sql.SQL("SELECT base, quote, day, rate FROM {}").format(FX_RATES.ident(schema))


def _rate(row: Mapping[str, Any]) -> Rate:
    return Rate(row["base"], row["quote"], row["day"], row["rate"])


@cache
def _select_terms(schema: str) -> sql.Composed:
    return sql.SQL("SELECT * FROM {} ORDER BY partner_id").format(sql.Identifier(schema, "partner_terms"))


def _select_positions(tracking: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "SELECT application_name, max(notification_id) AS last FROM {} "
        "WHERE position('#' in application_name) > 0 GROUP BY application_name ORDER BY application_name"
    ).format(tracking)


def _select_applied(tracking: sql.Identifier) -> sql.Composed:
    """The last offset applied of each partition named (one index probe each)."""
    return sql.SQL(
        "SELECT n.name, (SELECT max(t.notification_id) FROM {} t WHERE t.application_name = n.name) AS last "
        "FROM unnest(%s::text[]) AS n(name)"
    ).format(tracking)


@cache
def _select_recorded(schema: str, *, one: bool) -> sql.Composed:
    """Statements with their lines (as a JSON array), in the order they were folded."""
    where = sql.SQL(" WHERE s.statement_id = %s" if one else "")
    return sql.SQL(
        "SELECT s.*, (SELECT json_agg(json_build_object('kind', l.kind, 'ref', l.ref, "
        "'offer_id', l.offer_id, 'happened_at', l.happened_at, 'amount', l.amount::text, "
        "'paid_amount', l.paid_amount::text, 'rate_pair', l.rate_pair, 'rate', l.rate::text, "
        "'rate_day', l.rate_day) "
        "ORDER BY l.kind, l.ref) FROM {} l WHERE l.statement_id = s.statement_id) AS lines "
        "FROM {} s{} ORDER BY split_part(s.recorded_from, '@', 1), s.log_offset"
    ).format(LINES.ident(schema), STATEMENTS.ident(schema), where)


def _count_unfolded(events: sql.Identifier, statements: sql.Identifier) -> sql.Composed:
    """Statements issued (or paid) in the event store less those the fold recorded (or
    recorded paid)."""
    return sql.SQL(
        "SELECT (SELECT count(*) FROM {events} WHERE topic = %s) - (SELECT count(*) FROM {statements}) "
        "+ (SELECT count(*) FROM {events} WHERE topic = %s) "
        "- (SELECT count(*) FROM {statements} WHERE status = 'paid') AS unfolded"
    ).format(events=events, statements=statements)
