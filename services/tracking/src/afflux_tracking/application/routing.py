"""The routing view: the slice of ``afflux.partners.v1`` a click needs, kept in the
tracking schema so a redirect never waits on another service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from afflux_contracts import (
    Envelope,
    Event,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    RelationshipSet,
    Visibility,
)
from afflux_plumbing.store import Changes, TrackedApplication, Write
from afflux_tracking.adapters.routing_sql import VIEW_DDL, link_query, newest_wins
from afflux_tracking.domain.routing import LinkState, OfferRoute, PartnerRoute


class Tracking(TrackedApplication):
    """Tracking's store. It records no aggregates of its own (clicks and conversion
    reports go straight to the log); it keeps the routing view, its consumer position
    and inbox."""

    name = "Tracking"
    view_ddl: ClassVar = VIEW_DDL

    def apply_partner_event(self, envelope: Envelope[Event]) -> Changes:
        """The view writes one partners event causes (events tracking does not route by,
        such as API keys, change nothing)."""
        payload, at = envelope.payload, envelope.occurred_at
        if isinstance(payload, OfferCreated):
            return Changes(writes=[
                self._upsert("offers", {"offer_id": payload.offer_id}, {
                    "destination_url": payload.destination_url,
                    "fallback_url": payload.fallback_url,
                    "visibility": payload.visibility.value,
                }, ("details_at", at)),
                self._offer_status(payload.offer_id, payload.status, at),
            ])
        if isinstance(payload, OfferStatusChanged):
            return Changes(writes=[self._offer_status(payload.offer_id, payload.status, at)])
        if isinstance(payload, PartnerCreated | PartnerStatusChanged):
            return Changes(writes=[self._partner_status(payload.partner_id, payload.status, at)])
        if isinstance(payload, RelationshipSet):
            keys = {"offer_id": payload.offer_id, "partner_id": payload.partner_id}
            return Changes(writes=[
                self._upsert("relationships", keys, {"approved": payload.approved}, ("set_at", at))
            ])
        return Changes()

    def link(self, offer_id: str, partner_id: str) -> LinkState:
        """What the view knows of one tracking link (blocking: call it from a thread)."""
        statement = link_query(self.table("offers"), self.table("partners"), self.table("relationships"))
        rows = self.query(statement, {"offer_id": offer_id, "partner_id": partner_id})
        row = rows[0]
        offer = None
        if row["offer_id"] is not None:
            offer = OfferRoute(
                offer_id=row["offer_id"],
                destination_url=row["destination_url"],
                fallback_url=row["fallback_url"],
                status=OfferStatus(row["offer_status"]),
                visibility=Visibility(row["visibility"]),
            )
        partner = None
        if row["partner_id"] is not None:
            partner = PartnerRoute(partner_id=row["partner_id"], status=PartnerStatus(row["partner_status"]))
        return LinkState(offer=offer, partner=partner, approved=row["approved"])

    def _offer_status(self, offer_id: str, status: OfferStatus, at: datetime) -> Write:
        return self._upsert("offers", {"offer_id": offer_id}, {"status": status.value}, ("status_at", at))

    def _partner_status(self, partner_id: str, status: PartnerStatus, at: datetime) -> Write:
        return self._upsert(
            "partners", {"partner_id": partner_id}, {"status": status.value}, ("status_at", at)
        )

    def _upsert(
        self, table: str, keys: dict[str, Any], values: dict[str, Any], stamp: tuple[str, datetime]
    ) -> Write:
        statement, params = newest_wins(self.table(table), keys, values, stamp)
        return Write(statement, params)
