"""Helpers for tracking's integration tests: partners events to feed the routing view,
and reading back what the service put on ``afflux.tracking.v1``."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from afflux_contracts import (
    TRACKING,
    ConversionSecurity,
    Envelope,
    Event,
    OfferCreated,
    OfferStatus,
    PartnerCreated,
    PartnerStatus,
    PayoutType,
    RelationshipSet,
    Terms,
    Visibility,
)
from afflux_infra.testing import eventually, read_envelopes
from afflux_plumbing.publish import Publisher
from afflux_plumbing.store import TrackedApplication
from afflux_tracking.application.routing import Routing

POSTBACK_TOKEN = "test-postback-token"
"""Every test offer's postback token (tracking sees only its SHA-256)."""


def security(*, token_required: bool = True, allowed_ips: tuple[str, ...] = (),
             pixel_allowed: bool = False) -> ConversionSecurity:
    return ConversionSecurity(token_required=token_required,
                              token_sha256=hashlib.sha256(POSTBACK_TOKEN.encode()).hexdigest(),
                              allowed_ips=allowed_ips, pixel_allowed=pixel_allowed)


def fresh_id(kind: str) -> str:
    """An id no other test (or earlier run on the same broker) uses."""
    return f"{kind}-{secrets.token_hex(6)}"


def offer_created(
    offer_id: str,
    destination_url: str,
    *,
    status: OfferStatus = OfferStatus.ACTIVE,
    visibility: Visibility = Visibility.REQUIRE_APPROVAL,
    fallback_url: str | None = None,
    conversion_security: ConversionSecurity | None = None,
) -> OfferCreated:
    return OfferCreated(
        offer_id=offer_id, name=f"offer {offer_id}", destination_url=destination_url, status=status,
        visibility=visibility, currency="USD", payout=Terms(type=PayoutType.CPA, amount="5"),
        fallback_url=fallback_url, conversion_security=conversion_security or security(),
    )


def partner_created(partner_id: str, status: PartnerStatus = PartnerStatus.ACTIVE) -> PartnerCreated:
    return PartnerCreated(partner_id=partner_id, name=partner_id, email=f"{partner_id}@example.com",
                          status=status)


def approval(offer_id: str, partner_id: str, approved: bool = True,
             coupon_codes: tuple[str, ...] = ()) -> RelationshipSet:
    return RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=approved,
                           coupon_codes=coupon_codes)


@dataclass
class PartnersLog:
    """Publishes partners events as the partners service would, and waits until the
    tracking view has applied them."""

    publisher: Publisher
    store: TrackedApplication

    async def publish(self, *events: Event, occurred_at: datetime | None = None) -> None:
        envelopes = [Envelope.wrap(event, producer="test", occurred_at=occurred_at) for event in events]
        for envelope in envelopes:
            await self.publisher.publish(envelope)
        for envelope in envelopes:
            await eventually(lambda e=envelope: self.store.has_applied(e.event_id))  # type: ignore[misc]


@dataclass(frozen=True)
class OnLog:
    """One record of ``afflux.tracking.v1``: its decoded payload, its key and its JSON."""

    payload: Any
    key: str
    wire: dict[str, Any]


async def tracking_records(bootstrap: str, matches: Callable[[Any], bool]) -> list[OnLog]:
    """Every record on ``afflux.tracking.v1`` (all partitions, from the beginning up to
    the current end) whose payload ``matches``."""
    found: list[OnLog] = []
    for record, envelope in await read_envelopes(bootstrap, TRACKING.name, TRACKING.partitions):
        payload = envelope.payload
        if matches(payload):
            key = record.key.decode() if record.key else ""
            found.append(OnLog(payload, key, json.loads(record.value or b"")))
    return found


@dataclass
class RunningTracking:
    """The service under test: its HTTP client, its store, and the partners log feeding it."""

    client: httpx.AsyncClient
    store: TrackedApplication
    partners: PartnersLog
    bootstrap: str
    routing: Routing
    """The routing view's keeper (its ``view`` is what clicks are routed by)."""
