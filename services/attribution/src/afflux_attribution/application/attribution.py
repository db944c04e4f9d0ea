"""Attribution's store and what each consumed event changes in it.

Two consumers apply to this one store. The partners consumer keeps the terms views
(offer and relationship terms as versions stamped with the event that made them,
partner statuses, the coupon register). The tracking consumer keeps the click index,
prices clicks on CPC offers and thousands of impressions on CPM offers, and decides
each reported conversion: it gathers the facts (click or coupon, terms in force, the
partner's status, whether the order or the transaction's event already earned, the
cap and tier tallies, locked), lets the domain decide, and records the decision as a
new Conversion aggregate, its conversions-view row, its dedupe rows and the tallies it
adds to, in the one transaction that also records the consumer's position.

Determinism: a conversion (or a click to price) is decided only when the partners
view had caught up with the partners log's end after the record was fetched
(``partners_fresh``, set by the tracking consumer per fetch); otherwise it is parked
and retried, never decided with older terms.

The admin's review (approve, reject, reverse, adjust) changes a decided Conversion
and its row in one transaction; the outbox relay publishes the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from psycopg import sql
from psycopg.rows import DictRow

from afflux_attribution.adapters import counts_sql, views
from afflux_attribution.application.program_terms import offer_version, relationship_version
from afflux_attribution.application.run_memory import Remembered, RunMemory
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.priced import (
    IMPRESSIONS_PER_BLOCK,
    PricedClick,
    PricedImpressions,
    priced_by,
    unit_price,
)
from afflux_attribution.domain.program import OFFER_WIDE, PERIODS, Counts, Tally, event_terms, period_keys
from afflux_attribution.domain.rules import (
    Attributed,
    Click,
    ConversionReport,
    Credit,
    Facts,
    choose_credit,
    decide,
)
from afflux_attribution.domain.terms import (
    OfferTerms,
    RelationshipTerms,
    offer_terms_in_force,
    relationship_terms_in_force,
)
from afflux_contracts import (
    ClickOutcome,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    ImpressionRecorded,
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    PartnerUpdated,
    PayoutType,
    RelationshipSet,
    StatusChange,
)
from afflux_plumbing.consume import RetryLater
from afflux_plumbing.positions import Position
from afflux_plumbing.store import Changes, RunItem, TrackedApplication, Write

ATTEMPTS = 3
"""Tries of a review that loses a race with another review of the same conversion."""


class UnknownConversion(LookupError):
    """No decided conversion has this id (or no credited order has this offer and order_id)."""


class ConcurrentReview(Exception):
    """Another review of the same conversion kept winning the race."""


@dataclass(frozen=True)
class ConversionFilter:
    partner_id: str | None = None
    offer_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class PageKey:
    """Where a page of conversions ends: the listing's sort key of its last row."""

    converted_at: datetime
    conversion_id: str


@dataclass(frozen=True)
class ConversionPage:
    rows: list[dict[str, Any]]
    next: PageKey | None


@dataclass
class Deferred(Changes):
    """A tracking record to compute inside the transaction that commits it."""

    envelope: Envelope[Event] | None = None


class Attribution(TrackedApplication):
    """The attribution service's event store (Conversion aggregates) and views."""

    name = "Attribution"
    view_ddl: ClassVar = views.VIEW_DDL

    def __init__(self, env: Any = None) -> None:
        self.run_memory = RunMemory()
        self._statements: dict[str, sql.Composed] = {}
        super().__init__(env)

    def statement(self, name: str, build: Callable[[], sql.Composed]) -> sql.Composed:
        """A statement built once per store: a record does not compose it again (and the
        run's consecutive writes of one statement are sent as one ``executemany``)."""
        found = self._statements.get(name)
        if found is None:
            found = self._statements[name] = build()
        return found

    def apply_run(self, run: Sequence[RunItem]) -> list[bool]:
        """As ``TrackedApplication.apply_run``, with a memory of what the run read
        (``run_memory.py``): a record reads only what no record before it in the run did."""
        self.run_memory.current = Remembered()
        try:
            return super().apply_run(run)
        finally:
            self.run_memory.current = None

    @property
    def _remembered(self) -> Remembered | None:
        return self.run_memory.current

    # -- afflux.partners.v1 ------------------------------------------------------------

    def apply_partners_event(self, envelope: Envelope[Event]) -> Changes:
        """The terms and partner views one partners event changes (others change nothing).
        Each offer or relationship version is stamped with its event's id, which the
        decisions priced with it name."""
        payload, at, event_id = envelope.payload, envelope.occurred_at, str(envelope.event_id)
        if self._remembered is not None:
            self._remembered.forget_terms()
        if isinstance(payload, OfferCreated | OfferUpdated):
            return Changes(writes=[self._offer_terms_version(offer_version(payload, at, event_id))])
        if isinstance(payload, OfferStatusChanged):
            latest = offer_terms_in_force(self.offer_terms(payload.offer_id), at)
            if latest is None:
                raise RetryLater(f"status change of offer {payload.offer_id}, which is not known yet")
            changed = replace(latest, effective_from=at, status=payload.status, event_id=event_id)
            return Changes(writes=[self._offer_terms_version(changed)])
        if isinstance(payload, RelationshipSet):
            version = relationship_version(payload, at, event_id)
            statement = views.insert(self.table("relationship_terms"), views.RELATIONSHIP_TERMS_COLUMNS,
                                     ("offer_id", "partner_id", "effective_from"), later_wins=True)
            return Changes(writes=[Write(statement, views.relationship_terms_row(version)),
                                   *self._coupon_writes(payload)])
        if isinstance(payload, PartnerCreated | PartnerUpdated | PartnerStatusChanged):
            row = {"partner_id": payload.partner_id, "status": payload.status.value, "status_at": at}
            return Changes(writes=[Write(views.newest_status(self.table("partners")), row)])
        return Changes()

    def _coupon_writes(self, relationship: RelationshipSet) -> list[Write]:
        """The partner's coupon codes on the offer are the ones it now holds (case-insensitive)."""
        key = {"offer_id": relationship.offer_id, "partner_id": relationship.partner_id}
        writes = [Write(counts_sql.replace_coupons(self.table("coupons")), key)]
        insert = views.insert(self.table("coupons"), ("code", "offer_id", "partner_id"), ("code", "offer_id"),
                              later_wins=True)
        writes += [Write(insert, {**key, "code": code.upper()}) for code in relationship.coupon_codes]
        return writes

    def _offer_terms_version(self, terms: OfferTerms) -> Write:
        statement = views.insert(self.table("offer_terms"), views.OFFER_TERMS_COLUMNS,
                                 ("offer_id", "effective_from"), later_wins=True)
        return Write(statement, views.offer_terms_row(terms))

    # -- afflux.tracking.v1 ------------------------------------------------------------

    partners_fresh: Callable[[], bool] = staticmethod(lambda: True)
    """Whether the partners view has caught up with the partners log's end since the
    record being applied was fetched (the service's tracking consumer sets it per fetch)."""

    def apply_tracking_event(self, envelope: Envelope[Event]) -> Changes:
        """``tracking_changes``; in a run, the new aggregates wait in the run's memory, in
        record order, for ``end_of_run`` to insert all their events in one statement."""
        changes = self.tracking_changes(envelope)
        remembered = self._remembered
        if remembered is None or isinstance(changes, Deferred) or not changes.aggregates:
            return changes
        remembered.aggregates.extend(changes.aggregates)
        return Changes(writes=changes.writes)

    def tracking_changes(self, envelope: Envelope[Event]) -> Changes:
        """Index a click (and price it on a CPC offer), count an impression on a CPM
        offer, or decide a conversion.

        What reads counts (a decision, an impression) must read them in the transaction
        that records it: called outside one (the consumer's one-record-at-a-time path),
        it returns ``Deferred`` and ``apply`` computes it inside the transaction."""
        payload = envelope.payload
        if isinstance(payload, ConversionReported | ImpressionRecorded) and not self.in_transaction():
            return Deferred(envelope=envelope)
        if isinstance(payload, ClickRecorded):
            click = Click(payload.transaction_id, payload.offer_id, payload.partner_id,
                          payload.clicked_at, payload.outcome, payload.sub1, payload.ip)
            statement = self.statement("insert click", lambda: views.insert(
                self.table("clicks"), views.CLICK_COLUMNS, ("transaction_id",)))
            changes = Changes(writes=[Write(statement, views.click_row(click))])
            if click.outcome is ClickOutcome.VALID:
                return self._price_click(click, changes)
            return changes
        if isinstance(payload, ImpressionRecorded):
            if payload.outcome is ClickOutcome.VALID:
                return self._count_impression(payload)
            return Changes()
        if isinstance(payload, ConversionReported):
            return self.decide(payload, causation_id=str(envelope.event_id))
        return Changes()

    def in_transaction(self) -> bool:
        """Whether this thread is applying a run (its reads are in the run's transaction)."""
        return self.tracked_recorder.in_run()

    def apply(self, changes: Changes, position: Position, event_id: UUID | None) -> bool:
        """As ``TrackedApplication.apply``; a ``Deferred`` record is computed inside the
        transaction that commits it (a run of one)."""
        if isinstance(changes, Deferred) and changes.envelope is not None and event_id is not None:
            envelope = changes.envelope
            run = [RunItem(position, event_id, lambda: self.apply_tracking_event(envelope))]
            return self.apply_run(run)[0]
        return super().apply(changes, position, event_id)

    def _require_fresh(self, what: str) -> None:
        if not self.partners_fresh():
            raise RetryLater(f"{what}: the partners view has not caught up with the partners log yet")

    def _price_click(self, click: Click, changes: Changes) -> Changes:
        """A valid click on an offer paying (or booking) per click is priced once. With the
        partners view caught up, an offer it does not know is not on the partners log:
        the click is indexed, and there is nothing to price it by."""
        self._require_fresh(f"click {click.transaction_id}")
        offer = offer_terms_in_force(self.offer_terms(click.offer_id), click.clicked_at)
        if offer is None or not priced_by(offer, PayoutType.CPC):
            return changes
        relationship = relationship_terms_in_force(
            self.relationship_terms(click.offer_id, click.partner_id), click.clicked_at)
        price = unit_price(offer, relationship, PayoutType.CPC)
        if price is None or PricedClick.create_id(click.transaction_id) in self.repository:
            return changes
        priced = PricedClick.price(click.transaction_id, click.partner_id, offer, relationship, price,
                                   click.clicked_at)
        return Changes(aggregates=[priced], writes=changes.writes)

    def _count_impression(self, impression: ImpressionRecorded) -> Changes:
        """Count a valid impression while its offer pays per thousand; each thousandth
        prices the thousand."""
        self._require_fresh(f"impression {impression.impression_id}")
        offer = offer_terms_in_force(self.offer_terms(impression.offer_id), impression.impressed_at)
        if offer is None or not priced_by(offer, PayoutType.CPM):
            return Changes()
        relationship = relationship_terms_in_force(
            self.relationship_terms(impression.offer_id, impression.partner_id), impression.impressed_at)
        price = unit_price(offer, relationship, PayoutType.CPM)
        if price is None:
            return Changes()
        key = {"offer_id": impression.offer_id, "partner_id": impression.partner_id}
        table = self.table("impression_counts")
        self.execute(views.insert(table, ("offer_id", "partner_id"), ("offer_id", "partner_id")), key)
        rows = self.query(views.select_where(table, "offer_id", "partner_id") + views.FOR_UPDATE, key)
        count = int(rows[0]["impressions"]) + 1
        writes = [Write(counts_sql.add_impression(table), key)]
        if count % IMPRESSIONS_PER_BLOCK:
            return Changes(writes=writes)
        block = PricedImpressions.price(impression.partner_id, offer, relationship, price,
                                        count // IMPRESSIONS_PER_BLOCK, impression.impression_id,
                                        impression.impressed_at)
        return Changes(aggregates=[block], writes=writes)

    def decide(self, reported: ConversionReported, causation_id: str) -> Changes:
        """Attribute one reported conversion, once: a conversion already decided (a
        redelivery, or a retry after a conflicting commit) changes nothing.

        A click whose offer has no known terms, or a partners view not caught up with
        its log, means the decision would not be the one the log dictates: the report
        is parked (``RetryLater``) until it is. Two conversions of one order racing each
        other both try to insert the order's dedupe row; the loser's commit fails, and
        its retry finds the order credited and rejects it as duplicate.
        """
        self._lock_event_store()
        report = conversion_report(reported)
        found = self._report_facts(report)
        remembered = self._remembered
        if found["decided"] or (remembered is not None and report.conversion_id in remembered.decided):
            return Changes()
        click = views.click_from(found) if found["transaction_id"] is not None else None
        offer_id = click.offer_id if click is not None else report.offer_id
        if not self.partners_fresh():
            message = f"conversion {report.conversion_id}: the partners view is catching up with its log"
            self._hold(report, offer_id, message)
            raise RetryLater(message)
        offer = offer_terms_in_force(self.offer_terms(offer_id), report.converted_at) if offer_id else None
        if offer_id is not None and offer is None and (click is not None or report.coupon_code):
            message = f"conversion {report.conversion_id}: offer {offer_id} not known yet"
            self._hold(report, offer_id, message)
            raise RetryLater(message)
        coupon_partner = (self.coupon_partner(report.coupon_code, offer_id)
                          if report.coupon_code and offer_id else None)
        credit = choose_credit(report, click, coupon_partner, offer_id,
                               offer.coupon_precedence if offer else "click_first")
        facts = (self._facts(report, credit, offer, found)
                 if credit is not None and offer is not None else None)
        decision = decide(report, credit, facts)
        conversion = Conversion.decide(report, decision, causation_id)
        insert = self.statement("insert conversion", lambda: views.insert(
            self.table("conversions"), views.CONVERSION_COLUMNS))
        unhold = self.statement("delete held", lambda: views.delete_where(
            self.table("held_reports"), "conversion_id"))
        writes = [Write(insert, views.conversion_params(conversion)),
                  Write(unhold, {"conversion_id": report.conversion_id})]
        if isinstance(decision, Attributed):
            writes += self._credited(report, decision)
        remembered = self._remembered
        if remembered is None:
            return Changes(aggregates=[conversion], writes=writes)
        remembered.decided.add(report.conversion_id)
        for write in writes:
            remembered.write_later(id(write.statement), [write])
        return Changes(aggregates=[conversion])

    def _lock_event_store(self) -> None:
        """Take the event store's insert lock (once per run; held until it commits).

        Every decision takes it before it reads anything (its event takes it anyway, until
        commit): tallies are then only ever locked under it, so two instances' runs can
        never wait on each other's tallies and insert lock in a cycle, and what a run
        read of the tallies, orders and events stays true until it commits."""
        remembered = self._remembered
        if not self.in_transaction() or (remembered is not None and remembered.store_locked):
            return
        for lock_event_store in self.tracked_recorder.lock_table_statements:
            self.execute(lock_event_store)
        if remembered is not None:
            remembered.store_locked = True

    def _report_facts(self, report: ConversionReport) -> DictRow:
        """Whether the report is decided, its click, and whether its transaction's event and
        its order were taken (``views.select_report_facts``): one round trip."""
        statement = self.statement("report facts", lambda: views.select_report_facts(
            self.table("conversions"), self.table("clicks"), self.table("converted_events"),
            self.table("credited_orders")))
        return self.query(statement, {"conversion_id": report.conversion_id, "event": report.event,
                                      "transaction_id": report.transaction_id, "offer_id": report.offer_id,
                                      "order_id": report.order_id})[0]

    def _facts(self, report: ConversionReport, credit: Credit, offer: OfferTerms, found: DictRow) -> Facts:
        """What the rules need about the credited partner on the offer, with the tallies
        locked until this decision commits. ``found``: what ``_report_facts`` read (its
        click's offer is the credited one, whether by click or by coupon)."""
        at = report.converted_at
        relationship = relationship_terms_in_force(
            self.relationship_terms(credit.offer_id, credit.partner_id), at)
        event = event_terms(offer, report.event)
        remembered = self._remembered
        transaction = credit.click.transaction_id if credit.click is not None else None
        converted = transaction is not None and event is not None and (
            bool(found["converted"])
            or (remembered is not None and (transaction, report.event) in remembered.converted))
        credited = report.order_id is not None and (
            bool(found["credited"])
            or (remembered is not None and (credit.offer_id, report.order_id) in remembered.credited))
        return Facts(offer=offer, relationship=relationship,
                     partner_status=self.partner_status(credit.partner_id),
                     order_already_credited=credited, event_already_converted=converted,
                     counts=self._locked_counts(credit, report, offer))

    def _locked_counts(self, credit: Credit, report: ConversionReport, offer: OfferTerms) -> Counts:
        buckets = period_keys(report.converted_at)
        keys = [(credit.offer_id, partner, buckets[period])
                for partner in (OFFER_WIDE, credit.partner_id) for period in PERIODS]
        locked = self._lock_tallies(keys)
        tallies: dict[tuple[str, str], Tally] = {}
        for scope, partner in (("offer", OFFER_WIDE), ("partner", credit.partner_id)):
            for period in PERIODS:
                tally = locked.get((credit.offer_id, partner, buckets[period]))
                if tally is not None:
                    tallies[(scope, period)] = tally
        ip_today = 0
        if report.ip is not None and offer.fraud is not None and offer.fraud.max_conversions_per_ip_per_day:
            ip_today = self._ip_today(credit, report)
        return Counts(tallies, ip_today)

    def _lock_tallies(self, keys: list[counts_sql.Key]) -> dict[counts_sql.Key, Tally]:
        """The tallies of ``keys``, locked until the run commits: those the run locked
        already from its memory (with its own additions), the others from their rows."""
        remembered = self._remembered
        known = remembered.tallies if remembered is not None else {}
        missing = [key for key in keys if key not in known]
        if missing:
            table = self.table("program_counts")
            rows = self.query(*counts_sql.lock_rows(table, missing))
            if len(rows) < len(missing):  # a new period: create its rows, so that they can be locked
                self.execute(*counts_sql.ensure_rows(table, missing))
                rows = self.query(*counts_sql.lock_rows(table, missing))
            read = {(row["offer_id"], row["partner_id"], row["period"]):
                    Tally(int(row["conversions"]), int(row["approved"]), row["payout"], row["revenue"])
                    for row in rows}
            if remembered is None:
                return read
            known.update(read)
        return {key: known[key] for key in keys if key in known}

    def _ip_today(self, credit: Credit, report: ConversionReport) -> int:
        """Conversions from the report's IP on the offer today (the run's memory first)."""
        key = _ip_key(credit, report)
        remembered = self._remembered
        ip_key = (key["offer_id"], key["ip"], key["day"])
        if remembered is not None and ip_key in remembered.ip_today:
            return remembered.ip_today[ip_key]
        found = self.query(views.select_where(self.table("ip_counts"), "offer_id", "ip", "day"), key)
        count = int(found[0]["conversions"]) if found else 0
        if remembered is not None:
            remembered.ip_today[ip_key] = count
        return count

    def _credited(self, report: ConversionReport, decision: Attributed) -> list[Write]:
        """What an attributed conversion adds: its order and transaction event taken, and
        its share of every tally (approved ones also count toward tiers). In a run, the
        run's memory takes the shares and the dedupe keys (``end_of_run`` writes them)."""
        credit, writes, remembered = decision.credit, [], self._remembered
        if report.order_id is not None:
            dedupe = self.statement("insert credited order", lambda: views.insert(
                self.table("credited_orders"), ("offer_id", "order_id", "conversion_id")))
            writes.append(Write(dedupe, {"offer_id": credit.offer_id, "order_id": report.order_id,
                                         "conversion_id": report.conversion_id}))
        if credit.click is not None:
            taken = self.statement("insert converted event", lambda: views.insert(
                self.table("converted_events"), ("transaction_id", "event", "conversion_id"),
                ("transaction_id", "event")))
            writes.append(Write(taken, {"transaction_id": credit.click.transaction_id, "event": report.event,
                                        "conversion_id": report.conversion_id}))
        approved = 1 if decision.status.value == "approved" else 0
        buckets = period_keys(report.converted_at)
        rows = [(credit.offer_id, partner, buckets[period], 1, approved, decision.payout,
                 decision.revenue or Decimal(0))
                for partner in (OFFER_WIDE, credit.partner_id) for period in PERIODS]
        key = _ip_key(credit, report)
        if remembered is None:
            writes.append(Write(*counts_sql.add(self.table("program_counts"), rows)))
            if report.ip is not None:
                writes.append(Write(counts_sql.add_ip(self.table("ip_counts")), {**key, "conversions": 1}))
            return writes
        for offer_id, partner_id, period, conversions, approved, payout, revenue in rows:
            remembered.add((offer_id, partner_id, period), conversions, approved, payout, revenue)
        if report.ip is not None:
            remembered.count_ip((key["offer_id"], key["ip"], key["day"]))
        if report.order_id is not None:
            remembered.credited.add((credit.offer_id, report.order_id))
        if credit.click is not None:
            remembered.converted.add((credit.click.transaction_id, report.event))
        return writes

    def end_of_run(self) -> Changes:
        """The run's new aggregates (their events in one insert, in record order), its
        decision writes, grouped by statement (each group one ``executemany``),
        then the sums it adds to the tallies and per-IP counts, one statement each (in key
        order; the tallies' rows are locked by the run already)."""
        remembered = self._remembered
        if remembered is None:
            return Changes()
        writes = [write for group in remembered.later.values() for write in group]
        if remembered.added:
            rows = [remembered.added[key] for key in sorted(remembered.added)]
            writes.append(Write(*counts_sql.add(self.table("program_counts"), rows)))
        add_ip = self.statement("add ip", lambda: counts_sql.add_ip(self.table("ip_counts")))
        writes += [Write(add_ip, {"offer_id": offer_id, "ip": ip, "day": day, "conversions": count})
                   for (offer_id, ip, day), count in sorted(remembered.ip_added.items())]
        return Changes(aggregates=remembered.aggregates, writes=writes)

    def _hold(self, report: ConversionReport, offer_id: str | None, message: str) -> None:
        """Note a report that is parked, so that it answers ``pending`` meanwhile.

        Committed at once on a connection of its own, outside the transaction of the
        record (which commits nothing, since the record is parked): it only states that
        the report was read, and the decision deletes it."""
        statement = views.insert(self.table("held_reports"), views.HELD_COLUMNS, ("conversion_id",))
        row = {"conversion_id": report.conversion_id, "event": report.event,
               "transaction_id": report.transaction_id, "offer_id": offer_id,
               "converted_at": report.converted_at, "message": message}
        with self.tracked_recorder.datastore.pool.connection() as connection, connection.transaction():
            connection.execute(statement, row)

    # -- the advertiser's review ---------------------------------------------------------

    def change_status(self, conversion_id: str, status: StatusChange, reason: str | None = None,
                      note: str | None = None) -> Conversion:
        """Approve, reject or reverse a decided conversion (``TransitionRefused`` if its
        status does not allow it, ``UnknownConversion`` if it is not decided)."""
        return self._review(conversion_id, lambda c: c.change_status(status, reason, note))

    def adjust(self, conversion_id: str, payout: Decimal, reason: str | None = None,
               note: str | None = None) -> Conversion:
        """Give an approved conversion a new payout, in its currency."""
        return self._review(conversion_id, lambda c: c.adjust(payout, reason, note))

    def conversion_of_order(self, offer_id: str, order_id: str) -> str:
        """The conversion_id an order was credited by on an offer."""
        statement = views.select_where(self.table("credited_orders"), "offer_id", "order_id")
        rows = self.query(statement, {"offer_id": offer_id, "order_id": order_id})
        if not rows:
            raise UnknownConversion(f"no conversion of order {order_id!r} was credited on offer {offer_id!r}")
        return str(rows[0]["conversion_id"])

    def _review(self, conversion_id: str, change: Callable[[Conversion], None]) -> Conversion:
        """Apply ``change`` to the conversion and save it with its row, again on a lost race
        (the retry sees the winner's status, so a second reversal is refused, not doubled)."""
        for _ in range(ATTEMPTS):
            try:
                conversion: Conversion = self.repository.get(Conversion.create_id(conversion_id))
            except AggregateNotFoundError:
                raise UnknownConversion(f"no decided conversion has id {conversion_id!r}") from None
            change(conversion)
            row = views.conversion_row(conversion)
            write = Write(views.update_review(self.table("conversions")),
                          {c: row[c] for c in (*views.REVIEW_COLUMNS, "conversion_id")})
            try:
                self.save(conversion, writes=[write])
            except IntegrityError:
                continue
            return conversion
        raise ConcurrentReview(f"conversion {conversion_id} was reviewed concurrently; retry")

    # -- reads ---------------------------------------------------------------------------

    def click(self, transaction_id: str) -> Click | None:
        rows = self.query(views.select_where(self.table("clicks"), "transaction_id"),
                          {"transaction_id": transaction_id})
        return views.click_from(rows[0]) if rows else None

    def offer_terms(self, offer_id: str) -> list[OfferTerms]:
        """Every known version of an offer's terms, oldest first (once per run)."""
        remembered = self._remembered
        if remembered is not None and offer_id in remembered.offer_terms:
            return remembered.offer_terms[offer_id]
        statement = views.select_where(self.table("offer_terms"), "offer_id", order_by="effective_from")
        terms = [views.offer_terms_from(row) for row in self.query(statement, {"offer_id": offer_id})]
        if remembered is not None:
            remembered.offer_terms[offer_id] = terms
        return terms

    def relationship_terms(self, offer_id: str, partner_id: str) -> list[RelationshipTerms]:
        """Every known version of one partner's terms on one offer, oldest first (once per run)."""
        remembered = self._remembered
        if remembered is not None and (offer_id, partner_id) in remembered.relationship_terms:
            return remembered.relationship_terms[(offer_id, partner_id)]
        statement = views.select_where(self.table("relationship_terms"), "offer_id", "partner_id",
                                       order_by="effective_from")
        rows = self.query(statement, {"offer_id": offer_id, "partner_id": partner_id})
        terms = [views.relationship_terms_from(row) for row in rows]
        if remembered is not None:
            remembered.relationship_terms[(offer_id, partner_id)] = terms
        return terms

    def taken(self, transaction_id: str | None, event: str, offer_id: str,
              order_id: str | None) -> tuple[bool, bool]:
        """Whether the transaction already converted on ``event``, and whether the order
        was already credited on the offer (one round trip)."""
        if transaction_id is None and order_id is None:
            return False, False
        rows = self.query(views.select_taken(self.table("converted_events"), self.table("credited_orders")),
                          {"transaction_id": transaction_id, "event": event, "offer_id": offer_id,
                           "order_id": order_id})
        return bool(rows[0]["converted"]), bool(rows[0]["credited"])

    def partner_status(self, partner_id: str) -> PartnerStatus | None:
        """A partner's status (once per run)."""
        remembered = self._remembered
        if remembered is not None and partner_id in remembered.partner_status:
            return remembered.partner_status[partner_id]
        rows = self.query(views.select_where(self.table("partners"), "partner_id"),
                          {"partner_id": partner_id})
        status = PartnerStatus(rows[0]["status"]) if rows else None
        if remembered is not None:
            remembered.partner_status[partner_id] = status
        return status

    def coupon_partner(self, code: str, offer_id: str) -> str | None:
        """The partner a coupon code is assigned to on an offer, if any (case-insensitive;
        once per run)."""
        remembered, key = self._remembered, (code.upper(), offer_id)
        if remembered is not None and key in remembered.coupon_partner:
            return remembered.coupon_partner[key]
        rows = self.query(views.select_where(self.table("coupons"), "code", "offer_id"),
                          {"code": key[0], "offer_id": offer_id})
        partner = cast(str, rows[0]["partner_id"]) if rows else None
        if remembered is not None:
            remembered.coupon_partner[key] = partner
        return partner

    def execute(self, statement: Any, params: Any = ()) -> None:
        """Run a statement that returns nothing, in the applying transaction when there is one."""
        with self.tracked_recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)

    def conversion(self, conversion_id: str) -> dict[str, Any] | None:
        """The conversions-view row of a decided conversion; ``None`` if not decided (yet)."""
        rows = self.query(views.select_where(self.table("conversions"), "conversion_id"),
                          {"conversion_id": conversion_id})
        return dict(rows[0]) if rows else None

    def held(self, conversion_id: str) -> dict[str, Any] | None:
        """A report read but not decided yet (parked), if this is one."""
        rows = self.query(views.select_where(self.table("held_reports"), "conversion_id"),
                          {"conversion_id": conversion_id})
        return dict(rows[0]) if rows else None

    def conversions(self, where: ConversionFilter, limit: int,
                    after: PageKey | None = None) -> ConversionPage:
        """One page of the decided conversions matching ``where``, in (converted_at,
        conversion_id) order."""
        asked = (("partner_id", where.partner_id), ("offer_id", where.offer_id), ("status", where.status))
        filters = {key: value for key, value in asked if value is not None}
        params: dict[str, Any] = {**filters, "limit": limit + 1, "since": where.since, "until": where.until}
        if after is not None:
            params |= {"after_at": after.converted_at, "after_id": after.conversion_id}
        statement = views.select_conversions(self.table("conversions"), list(filters),
                                             since=where.since is not None, until=where.until is not None,
                                             after=after is not None)
        rows = [dict(row) for row in self.query(statement, params)]
        if len(rows) <= limit:
            return ConversionPage(rows, None)
        last = rows[limit - 1]
        return ConversionPage(rows[:limit], PageKey(views.utc(last["converted_at"]), last["conversion_id"]))


def _ip_key(credit: Credit, report: ConversionReport) -> dict[str, Any]:
    return {"offer_id": credit.offer_id, "ip": report.ip, "day": report.converted_at.date()}


def conversion_report(reported: ConversionReported) -> ConversionReport:
    return ConversionReport(
        conversion_id=reported.conversion_id,
        converted_at=reported.reported_at,
        transaction_id=reported.transaction_id,
        coupon_code=reported.coupon_code,
        event=reported.event,
        sale_amount=reported.amount,
        currency=reported.currency,
        order_id=reported.order_id,
        ip=reported.ip,
        offer_id=reported.offer_id,
    )
