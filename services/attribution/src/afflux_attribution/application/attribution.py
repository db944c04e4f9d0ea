"""Attribution's store and what each consumed event changes in it.

Two consumers apply to this one store. The partners consumer keeps the terms views
(offer and relationship terms as versions, partner statuses). The tracking consumer
keeps the click index and decides each reported conversion: it gathers the facts
(click, terms in force, whether the order already earned), lets the domain decide,
and records the decision as a new Conversion aggregate, its conversions-view row and,
for a credited order, the dedupe row, in the one transaction that also records the
consumer's position.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

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
    Terms,
)
from afflux_plumbing.consume import RetryLater
from afflux_plumbing.store import Changes, TrackedApplication, Write


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
                raise RetryLater(f"conversion {report.conversion_id}: offer {click.offer_id} not known yet")
            relationship = relationship_terms_in_force(
                self.relationship_terms(click.offer_id, click.partner_id), report.converted_at
            )
            if report.order_id is not None:
                credited = self.order_credited(click.offer_id, report.order_id)
        decision = attribute(report, click, offer, relationship, credited)
        conversion = Conversion.decide(report, decision, causation_id)
        writes = [Write(views.insert(self.table("conversions"), views.CONVERSION_COLUMNS),
                        views.conversion_row(conversion))]
        if isinstance(decision, Attributed) and report.order_id is not None:
            dedupe = views.insert(self.table("credited_orders"), ("offer_id", "order_id", "conversion_id"))
            writes.append(Write(dedupe, {"offer_id": decision.click.offer_id, "order_id": report.order_id,
                                         "conversion_id": report.conversion_id}))
        return Changes(aggregates=[conversion], writes=writes)

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
