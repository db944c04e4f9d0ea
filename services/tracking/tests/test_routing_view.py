"""The routing view on PostgreSQL: the same rows whatever order and however often the
partners events arrive, and a 503 (never a redirect) when a click cannot be recorded."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from tracking_fixtures import POSTBACK_TOKEN, approval, fresh_id, offer_created, partner_created, security

from afflux_contracts import (
    ClickRecorded,
    Envelope,
    Event,
    OfferStatus,
    OfferStatusChanged,
    PartnerStatus,
    PartnerStatusChanged,
    Visibility,
    utc_now,
)
from afflux_infra.embedded import free_port
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.store import Changes
from afflux_tracking.application.intake import Intake, IntakeSettings
from afflux_tracking.application.routing import Tracking, _security
from afflux_tracking.domain.links import new_transaction_id
from afflux_tracking.domain.routing import LinkState, OfferRoute, PartnerRoute
from afflux_tracking.entrypoints.http import create_app

DESTINATION = "https://shop.example/?t={transaction_id}"
FALLBACK = "https://shop.example/fallback"


@pytest.fixture
def store(database_url: str) -> Iterator[Tracking]:
    tracking = open_store(Tracking, database_url, "tracking")
    yield tracking
    tracking.close()


class Feed:
    """Applies envelopes to the store as the consumer does, at increasing offsets."""

    def __init__(self, store: Tracking) -> None:
        self.store = store
        self.offsets = itertools.count()

    def apply(self, envelope: Envelope[Event]) -> bool:
        position = Position("test.partners", 0, next(self.offsets))
        return self.store.apply(self.store.apply_partner_event(envelope), position, envelope.event_id)


def history(offer_id: str, partner_id: str) -> list[Envelope[Event]]:
    """One offer's and one partner's life, oldest first; it ends deleted, active, approved."""
    start = utc_now() - timedelta(hours=1)
    events: list[Event] = [
        offer_created(offer_id, DESTINATION, visibility=Visibility.PRIVATE, fallback_url=FALLBACK),
        partner_created(partner_id, PartnerStatus.PENDING),
        approval(offer_id, partner_id, approved=False),
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.PAUSED),
        PartnerStatusChanged(partner_id=partner_id, status=PartnerStatus.ACTIVE),
        approval(offer_id, partner_id, approved=True),
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.DELETED),
    ]
    return [Envelope.wrap(event, producer="test", occurred_at=start + timedelta(seconds=n))
            for n, event in enumerate(events)]


@pytest.mark.parametrize("seed", range(8))
def test_view_ends_the_same_whatever_the_arrival_order_and_redelivery(store: Tracking, seed: int) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    envelopes = history(offer_id, partner_id)
    shuffle = random.Random(seed)
    republished = [envelope.model_copy(update={"event_id": fresh_event.event_id})
                   for envelope, fresh_event in zip(envelopes, history(offer_id, partner_id), strict=True)]
    final = LinkState(
        offer=OfferRoute(offer_id, DESTINATION, OfferStatus.DELETED, Visibility.PRIVATE, FALLBACK,
                         _security(security())),
        partner=PartnerRoute(partner_id, PartnerStatus.ACTIVE),
        approved=True,
    )
    feed = Feed(store)

    assert all(feed.apply(envelope) for envelope in shuffle.sample(envelopes, len(envelopes)))
    assert store.link(offer_id, partner_id) == final
    # Redelivered under the same event_ids: the inbox drops them.
    assert not any(feed.apply(envelope) for envelope in shuffle.sample(envelopes, len(envelopes)))
    # Re-sent under new event_ids (a producer retry), in yet another order: nothing changes.
    assert all(feed.apply(envelope) for envelope in shuffle.sample(republished, len(republished)))
    assert store.link(offer_id, partner_id) == final
    store.load_view()  # a restart rebuilds the memory view from the committed tables
    assert store.link(offer_id, partner_id) == final


def test_an_offer_known_only_by_a_status_change_is_not_routable_yet(store: Tracking) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    feed = Feed(store)
    feed.apply(Envelope.wrap(OfferStatusChanged(offer_id=offer_id, status=OfferStatus.ACTIVE), producer="t"))
    feed.apply(Envelope.wrap(partner_created(partner_id), producer="t"))

    assert store.link(offer_id, partner_id) == LinkState(
        offer=None, partner=PartnerRoute(partner_id, PartnerStatus.ACTIVE), approved=None
    )


def test_events_tracking_does_not_route_by_change_nothing(store: Tracking) -> None:
    click = ClickRecorded(transaction_id="0" * 32, offer_id="o", partner_id="p", clicked_at=utc_now())
    assert store.apply_partner_event(Envelope.wrap(click, producer="t")) == Changes()


async def test_click_and_postback_answer_503_when_the_log_does_not_acknowledge(store: Tracking) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    feed = Feed(store)
    for envelope in history(offer_id, partner_id)[:6]:  # paused, approved, with a fallback
        feed.apply(envelope)
    unreachable = Publisher(f"127.0.0.1:{free_port()}", client_id="tracking-tests-unreachable")

    async def ready() -> bool:
        return True

    partners_log = LogCatchUp(store, "afflux.partners.v1", f"127.0.0.1:{free_port()}")
    settings = IntakeSettings(publish_timeout=0.3, catch_up_timeout=0.3)
    intake = Intake(store, unreachable, partners_log, settings)
    app = create_app(intake, ready)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        click = await client.get(f"/c/{offer_id}/{partner_id}")
        postback = await client.get("/postback", params={
            "transaction_id": new_transaction_id(offer_id), "token": POSTBACK_TOKEN})

    assert click.status_code == 503
    assert "Location" not in click.headers
    assert click.json()["error"]["code"] == "unavailable"
    assert "log" in click.json()["error"]["message"]
    assert postback.status_code == 503
    assert postback.json()["error"]["code"] == "unavailable"
