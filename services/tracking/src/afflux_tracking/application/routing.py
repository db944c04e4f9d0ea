"""The routing view: the slice of ``afflux.partners.v1`` a click or a postback needs.

It lives in memory (``RoutingView``), so the hot path never waits on a database, and
in the tracking schema's tables, written in the consumer's transaction with its
position, so a restart rebuilds the memory from them and resumes the log where the
tables are. The memory is updated as each event is applied: it may run a moment ahead
of the committed tables, never behind (a failed run is applied again, and every
update is idempotent and order-independent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from psycopg.types.json import Jsonb

from afflux_contracts import (
    Cap,
    CapMetric,
    ConversionSecurity,
    Envelope,
    Event,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    Visibility,
)
from afflux_plumbing.store import Changes, TrackedApplication, Write
from afflux_tracking.adapters.routing_sql import VIEW_DDL, newest_wins, select_all
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.routing import LinkState
from afflux_tracking.domain.routing_view import OfferDetails, RoutingView
from afflux_tracking.domain.security import PostbackSecurity


class Tracking(TrackedApplication):
    """Tracking's store. It records no aggregates of its own (clicks and conversion
    reports go straight to the log); it keeps the routing view, its consumer position
    and inbox."""

    name = "Tracking"
    view_ddl: ClassVar = VIEW_DDL

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.view = RoutingView()
        self.load_view()

    def apply_partner_event(self, envelope: Envelope[Event]) -> Changes:
        """The view writes one partners event causes, applied to the memory view too
        (events tracking does not route by, such as API keys, change nothing)."""
        payload, at = envelope.payload, envelope.occurred_at
        if isinstance(payload, OfferCreated | OfferUpdated):  # the offer's whole state
            caps = click_caps(payload.caps)
            details = OfferDetails(payload.destination_url, payload.visibility, payload.fallback_url,
                                   _security(payload.conversion_security), caps)
            self.view.set_offer_details(payload.offer_id, details, at)
            self.view.set_offer_status(payload.offer_id, payload.status, at)
            security = payload.conversion_security
            return Changes(writes=[
                self._upsert("offers", {"offer_id": payload.offer_id}, {
                    "destination_url": payload.destination_url,
                    "fallback_url": payload.fallback_url,
                    "visibility": payload.visibility.value,
                    "security": security.model_dump_json() if security is not None else None,
                    "click_caps": _caps_json(caps),
                }, ("details_at", at)),
                self._offer_status(payload.offer_id, payload.status, at),
            ])
        if isinstance(payload, OfferStatusChanged):
            self.view.set_offer_status(payload.offer_id, payload.status, at)
            return Changes(writes=[self._offer_status(payload.offer_id, payload.status, at)])
        if isinstance(payload, PartnerCreated | PartnerUpdated | PartnerStatusChanged):
            self.view.set_partner_status(payload.partner_id, payload.status, at)
            return Changes(writes=[self._partner_status(payload.partner_id, payload.status, at)])
        if isinstance(payload, RelationshipSet):
            caps = click_caps(payload.caps)
            self.view.set_relationship(payload.offer_id, payload.partner_id, payload.approved,
                                       payload.coupon_codes, at, caps)
            keys = {"offer_id": payload.offer_id, "partner_id": payload.partner_id}
            values = {"approved": payload.approved, "coupon_codes": list(payload.coupon_codes),
                      "click_caps": _caps_json(caps)}
            return Changes(writes=[self._upsert("relationships", keys, values, ("set_at", at))])
        return Changes()

    def link(self, offer_id: str, partner_id: str) -> LinkState:
        """What the view knows of one tracking link."""
        return self.view.link(offer_id, partner_id)

    def load_view(self) -> None:
        """Rebuild the memory view from the committed tables (at start)."""
        view = RoutingView()
        for row in self.query(select_all(self.table("offers"))):
            if row["details_at"] is not None:
                view.set_offer_details(row["offer_id"], _details(row), row["details_at"])
            if row["status_at"] is not None:
                view.set_offer_status(row["offer_id"], OfferStatus(row["status"]), row["status_at"])
        for row in self.query(select_all(self.table("partners"))):
            view.set_partner_status(row["partner_id"], PartnerStatus(row["status"]), row["status_at"])
        for row in self.query(select_all(self.table("relationships"))):
            view.set_relationship(row["offer_id"], row["partner_id"], row["approved"],
                                  tuple(row["coupon_codes"]), row["set_at"], _caps_from(row["click_caps"]))
        self.view = view

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


def _security(published: ConversionSecurity | None) -> PostbackSecurity | None:
    if published is None:
        return None
    return PostbackSecurity.of(published.token_required, published.token_sha256,
                               published.allowed_ips, published.pixel_allowed)


def _details(row: Mapping[str, Any]) -> OfferDetails:
    stored = row["security"]
    security = None
    if stored is not None:
        document = stored if isinstance(stored, dict) else json.loads(stored)
        security = _security(ConversionSecurity.model_validate(document))
    return OfferDetails(row["destination_url"], Visibility(row["visibility"]), row["fallback_url"], security,
                        _caps_from(row["click_caps"]))


def click_caps(caps: tuple[Cap, ...]) -> tuple[ClickCap, ...]:
    """The hard click caps among an offer's or a relationship's caps (soft ones only alert;
    conversion, payout and revenue caps are attribution's)."""
    return tuple(ClickCap(cap.period.value, cap.limit, cap.per_partner)
                 for cap in caps if cap.metric is CapMetric.CLICKS and cap.hard)


def _caps_json(caps: tuple[ClickCap, ...]) -> Jsonb:
    return Jsonb([{"period": c.period, "limit": format(c.limit, "f"), "per_partner": c.per_partner}
                  for c in caps])


def _caps_from(stored: Any) -> tuple[ClickCap, ...]:
    if not stored:
        return ()
    document = stored if isinstance(stored, list) else json.loads(stored)
    return tuple(ClickCap(c["period"], Decimal(c["limit"]), c["per_partner"]) for c in document)
