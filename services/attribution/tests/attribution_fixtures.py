"""Helpers for attribution's integration tests: the running service, the partners and
tracking events that feed it (published as those services would), and reading back
what it put on ``afflux.attribution.v1``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import (
    ATTRIBUTION,
    TRACKING,
    ClickRecorded,
    ConversionReported,
    Envelope,
    Event,
    OfferCreated,
    PayoutType,
    RelationshipSet,
    Terms,
    utc_now,
)
from afflux_infra.testing import eventually, read_envelopes
from afflux_plumbing.publish import Publisher

ADMIN_TOKEN = "attribution-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fresh_id(kind: str) -> str:
    """An id no other test (or earlier run on the same broker) uses."""
    return f"{kind}-{secrets.token_hex(6)}"


def dead_lettered(topic: str) -> float:
    """How many records of ``topic`` consumers in this process sent to its DLQ so far."""
    return REGISTRY.get_sample_value("afflux_dead_lettered_total", {"topic": topic}) or 0.0


def cps(percent: str) -> Terms:
    return Terms(type=PayoutType.CPS, percent=Decimal(percent))


def cpa(amount: str) -> Terms:
    return Terms(type=PayoutType.CPA, amount=Decimal(amount))


@dataclass(frozen=True)
class OnLog:
    """One record of ``afflux.attribution.v1``: its envelope, its key and its JSON."""

    envelope: Envelope[Event]
    key: str
    wire: dict[str, Any]


@dataclass
class RunningAttribution:
    """The service under test, and the logs around it."""

    client: httpx.AsyncClient
    store: Attribution
    publisher: Publisher
    bootstrap: str

    async def offer(
        self, *, payout: Terms, revenue: Terms | None = None, custom_payout: Terms | None = None,
        offer_id: str | None = None, partner_id: str | None = None,
    ) -> tuple[str, str]:
        """An offer run by an approved partner (with ``custom_payout`` if given), as the
        partners service publishes them: in force since an hour ago, and applied by the
        service before this returns. Returns (offer_id, partner_id), new ones unless given."""
        offer_id, partner_id = offer_id or fresh_id("offer"), partner_id or fresh_id("partner")
        at = utc_now() - timedelta(hours=1)
        events: list[Event] = [
            OfferCreated(offer_id=offer_id, name="spring sale", destination_url="https://shop.example/",
                         currency="USD", payout=payout, revenue=revenue),
            RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=True, payout=custom_payout),
        ]
        envelopes = [Envelope.wrap(event, producer="test", occurred_at=at) for event in events]
        for envelope in envelopes:
            await self.publisher.publish(envelope)
        for envelope in envelopes:
            await eventually(lambda e=envelope: self.store.has_applied(e.event_id))  # type: ignore[misc]
        return offer_id, partner_id

    async def click(self, offer_id: str, partner_id: str) -> str:
        """A valid click on the partner's link, as the tracker publishes it; its transaction_id."""
        transaction_id = fresh_id("tx")
        click = ClickRecorded(transaction_id=transaction_id, offer_id=offer_id, partner_id=partner_id,
                              clicked_at=utc_now() - timedelta(minutes=5))
        await self.publisher.publish(Envelope.wrap(click, producer="test", occurred_at=click.clicked_at))
        return transaction_id

    async def report(self, transaction_id: str, **fields: Any) -> Envelope[ConversionReported]:
        """A conversion report on ``transaction_id``, as the tracker publishes it."""
        conversion = ConversionReported(conversion_id=fresh_id("conv"), transaction_id=transaction_id,
                                        reported_at=utc_now(), **fields)
        envelope = Envelope.wrap(conversion, producer="test", occurred_at=conversion.reported_at)
        await self.publish(envelope)
        return envelope

    async def publish(self, envelope: Envelope[Any]) -> RecordMetadata:
        return await self.publisher.publish(envelope)

    async def decided(self, conversion_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The service's answer on a conversion, once it has decided it (a report read
        but not decided answers ``pending`` without ``decided_at``)."""
        def answer() -> Any:
            url = f"{str(self.client.base_url).rstrip('/')}/v1/conversions/{conversion_id}"
            response = httpx.get(url, headers=ADMIN)
            decided = response.status_code == 200 and "decided_at" in response.json()
            return response.json() if decided else None
        return await eventually(answer, timeout=timeout)

    async def applied(self, delivery: RecordMetadata) -> None:
        """Wait until the tracking consumer has gone past one delivered record."""
        def past() -> bool:
            stored = self.store.stored_offset(TRACKING.name, delivery.partition)
            return stored is not None and stored >= delivery.offset
        await eventually(past)

    async def relayed(self) -> None:
        """Wait until the relay has published every decision stored so far."""
        recorder = self.store.tracked_recorder
        def caught_up() -> bool:
            head = recorder.max_notification_id()
            return head is None or (recorder.max_tracking_id("outbox-relay") or 0) >= head
        await eventually(caught_up)

    async def published(self, conversion_id: str) -> list[OnLog]:
        """Every record on ``afflux.attribution.v1`` (all partitions, from the beginning
        to the current end) about ``conversion_id``."""
        found: list[OnLog] = []
        on_log = await read_envelopes(self.bootstrap, ATTRIBUTION.name, ATTRIBUTION.partitions)
        for record, envelope in on_log:
            if getattr(envelope.payload, "conversion_id", None) == conversion_id:
                key = record.key.decode() if record.key else ""
                found.append(OnLog(envelope, key, json.loads(record.value or b"")))
        return found
