"""Attribution's store and what each consumed event changes in it.

Two consumers apply to this one store. The partners consumer keeps the terms views
(offer and relationship terms as versions, partner statuses). The tracking consumer
keeps the click index and decides each reported conversion: it gathers the facts
(click, terms in force, whether the order already earned), lets the domain decide,
and records the decision as a new Conversion aggregate, its conversions-view row and,
for a credited order, the dedupe row, in the one transaction that also records the
consumer's position.

The admin's review (approve, reject, reverse, adjust) changes a decided Conversion
and its row in one transaction; the outbox relay publishes the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from afflux_attribution.adapters import views
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.rules import Attributed, Click, ConversionReport, attribute
from afflux_attribution.domain.terms import (
    OfferTerms,
    PricingTerms,
    RelationshipTerms,
    offer_terms_in_force,
    relationship_terms_in_force,
)
from afflux_contracts import (
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    OfferCreated,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatusChanged,
    RelationshipSet,
    StatusChange,
    Terms,
)
from afflux_plumbing.consume import RetryLater
from afflux_plumbing.store import Changes, TrackedApplication, Write

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


class Attribution(TrackedApplication):
    """The attribution service's event store (Conversion aggregates) and views."""

    name = "Attribution"
    view_ddl: ClassVar = views.VIEW_DDL

    # -- afflux.partners.v1 ------------------------------------------------------------

    def apply_partners_event(self, envelope: Envelope[Event]) -> Changes:
        """The terms and partner views one partners event changes (others change nothing)."""
        payload, at = envelope.payload, envelope.occurred_at
        if isinstance(payload, OfferCreated):
            return Changes(writes=[self._offer_terms_version(OfferTerms(
                offer_id=payload.offer_id,
                effective_from=at,
                currency=payload.currency,
                payout=pricing_terms(payload.payout),
                revenue=pricing_terms(payload.revenue) if payload.revenue else None,
                attribution_window_days=payload.attribution_window_days,
                status=payload.status,
            ))])
        if isinstance(payload, OfferStatusChanged):
            latest = offer_terms_in_force(self.offer_terms(payload.offer_id), at)
            if latest is None:
                raise RetryLater(f"status change of offer {payload.offer_id}, which is not known yet")
            changed = replace(latest, effective_from=at, status=payload.status)
            return Changes(writes=[self._offer_terms_version(changed)])
        if isinstance(payload, RelationshipSet):
            version = RelationshipTerms(
                offer_id=payload.offer_id,
                partner_id=payload.partner_id,
                effective_from=at,
                approved=payload.approved,
                payout=pricing_terms(payload.payout) if payload.payout else None,
                revenue=pricing_terms(payload.revenue) if payload.revenue else None,
            )
            statement = views.insert(self.table("relationship_terms"), views.RELATIONSHIP_TERMS_COLUMNS,
                                     ("offer_id", "partner_id", "effective_from"), later_wins=True)
            return Changes(writes=[Write(statement, views.relationship_terms_row(version))])
        if isinstance(payload, PartnerCreated | PartnerStatusChanged):
            row = {"partner_id": payload.partner_id, "status": payload.status.value, "status_at": at}
            return Changes(writes=[Write(views.newest_status(self.table("partners")), row)])
        return Changes()

    def _offer_terms_version(self, terms: OfferTerms) -> Write:
        statement = views.insert(self.table("offer_terms"), views.OFFER_TERMS_COLUMNS,
                                 ("offer_id", "effective_from"), later_wins=True)
        return Write(statement, views.offer_terms_row(terms))

    # -- afflux.tracking.v1 ------------------------------------------------------------

    def apply_tracking_event(self, envelope: Envelope[Event]) -> Changes:
        """Index a click, or decide a conversion (impressions change nothing here)."""
        payload = envelope.payload
        if isinstance(payload, ClickRecorded):
            click = Click(payload.transaction_id, payload.offer_id, payload.partner_id,
                          payload.clicked_at, payload.outcome)
            statement = views.insert(self.table("clicks"), ("transaction_id", "offer_id", "partner_id",
                                                            "clicked_at", "outcome"), ("transaction_id",))
            return Changes(writes=[Write(statement, views.click_row(click))])
        if isinstance(payload, ConversionReported):
            return self.decide(payload, causation_id=str(envelope.event_id))
        return Changes()

    def decide(self, reported: ConversionReported, causation_id: str) -> Changes:
        """Attribute one reported conversion, once: a conversion already decided (a
        redelivery, or a retry after a conflicting commit) changes nothing.

        A click whose offer has no known terms means the partners consumer is behind:
        the report is parked (``RetryLater``) until the offer arrives. Two conversions of
        one order racing each other both try to insert the order's dedupe row; the loser's
        commit fails, and its retry finds the order credited and rejects it as duplicate.
        """
        if Conversion.create_id(reported.conversion_id) in self.repository:
            return Changes()
        report = conversion_report(reported)
        click = self.click(report.transaction_id) if report.transaction_id else None
        offer = relationship = None
        credited = False
        if click is not None:
            offer = offer_terms_in_force(self.offer_terms(click.offer_id), report.converted_at)
            if offer is None:
                message = f"conversion {report.conversion_id}: offer {click.offer_id} not known yet"
                self._hold(report, click.offer_id, message)
                raise RetryLater(message)
            relationship = relationship_terms_in_force(
                self.relationship_terms(click.offer_id, click.partner_id), report.converted_at
            )
            if report.order_id is not None:
                credited = self.order_credited(click.offer_id, report.order_id)
        decision = attribute(report, click, offer, relationship, credited)
        conversion = Conversion.decide(report, decision, causation_id)
        writes = [Write(views.insert(self.table("conversions"), views.CONVERSION_COLUMNS),
                        views.conversion_row(conversion)),
                  Write(views.delete_where(self.table("held_reports"), "conversion_id"),
                        {"conversion_id": report.conversion_id})]
        if isinstance(decision, Attributed) and report.order_id is not None:
            dedupe = views.insert(self.table("credited_orders"), ("offer_id", "order_id", "conversion_id"))
            writes.append(Write(dedupe, {"offer_id": decision.click.offer_id, "order_id": report.order_id,
                                         "conversion_id": report.conversion_id}))
        return Changes(aggregates=[conversion], writes=writes)

    def _hold(self, report: ConversionReport, offer_id: str, message: str) -> None:
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
        """Every known version of an offer's terms, oldest first."""
        statement = views.select_where(self.table("offer_terms"), "offer_id", order_by="effective_from")
        return [views.offer_terms_from(row) for row in self.query(statement, {"offer_id": offer_id})]

    def relationship_terms(self, offer_id: str, partner_id: str) -> list[RelationshipTerms]:
        """Every known version of one partner's terms on one offer, oldest first."""
        statement = views.select_where(self.table("relationship_terms"), "offer_id", "partner_id",
                                       order_by="effective_from")
        rows = self.query(statement, {"offer_id": offer_id, "partner_id": partner_id})
        return [views.relationship_terms_from(row) for row in rows]

    def order_credited(self, offer_id: str, order_id: str) -> bool:
        statement = views.select_where(self.table("credited_orders"), "offer_id", "order_id")
        return bool(self.query(statement, {"offer_id": offer_id, "order_id": order_id}))

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


def pricing_terms(terms: Terms) -> PricingTerms:
    return PricingTerms(terms.type, terms.amount, terms.percent)


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
    )
