"""The routing view: the same rows and the same memory whatever order, redelivery or split
into runs the partners events come in; rotated postback tokens; and a 503 (never a
redirect) when a click cannot be recorded."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from psycopg import sql
from tracking_fixtures import POSTBACK_TOKEN, approval, fresh_id, offer_created, partner_created, security

from afflux_contracts import (
    AllowDeny,
    DayParting,
    Envelope,
    Event,
    FailTraffic,
    FailTrafficMode,
    LandingPage,
    OfferPostbackTokenRotated,
    OfferStatus,
    OfferStatusChanged,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerStatus,
    PartnerStatusChanged,
    RoutedOffer,
    SmartLinkSet,
    Targeting,
    Visibility,
    utc_now,
)
from afflux_infra.embedded import free_port
from afflux_infra.testing import SessionInfrastructure
from afflux_plumbing.catch_up import LogCatchUp
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import Handlers, Record, record_of
from afflux_tracking.adapters.store import TrackingStore
from afflux_tracking.application.intake import Intake, IntakeSettings
from afflux_tracking.application.routing import Routing, security_of
from afflux_tracking.domain import destinations, routing_view, targeting
from afflux_tracking.domain.alternatives import Alternatives, Candidate
from afflux_tracking.domain.links import new_transaction_id
from afflux_tracking.domain.routing import LinkState, OfferRoute, PartnerRoute, SmartLinkRoute
from afflux_tracking.domain.security import Refusal
from afflux_tracking.entrypoints.http import create_app

DESTINATION = "https://shop.example/?t={transaction_id}"
FALLBACK = "https://shop.example/fallback"
NEW_TOKEN = "rotated-token"
TARGETING = Targeting(countries=AllowDeny(allow=("US", "CA")),
                      referrer_domains=AllowDeny(deny=("spam.example",)),
                      day_parting=DayParting(time_zone="Europe/Paris", weekdays=(1, 2), hours=(9,)))
NARROWED = Targeting(countries=AllowDeny(allow=("CA",)), devices=AllowDeny(deny=("tablet",)))
"""The relationship's targeting: this partner's clicks only from Canada, no tablets."""
PAGE = LandingPage(id="spring", name="Spring", url="https://shop.example/spring?t={transaction_id}", weight=2)


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Feed:
    """A tracking store and its routing view, fed runs as the consumer feeds them."""

    def __init__(self, database_url: str, schema: str = "tracking") -> None:
        self.store = open_store(TrackingStore, database_url, schema)
        self.routing = Routing(self.store)
        self.offsets = itertools.count()

    def records(self, envelopes: list[Envelope[Event]]) -> list[Record[Any]]:
        return [record_of(e, Position("test.partners", 0, next(self.offsets))) for e in envelopes]

    def apply(self, envelopes: list[Envelope[Event]], runs: random.Random | None = None) -> list[bool]:
        """Apply ``envelopes`` in log order: in runs of random lengths, or one at a time."""
        records, applied = self.records(envelopes), []
        while records:
            size = runs.randint(1, len(records)) if runs is not None else 1
            applied += self.store.apply_run(records[:size], Handlers.of(self.routing))
            records = records[size:]
        return applied

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every view row, in a stable order: what two feeds are compared by."""
        return {name: [tuple(row.values()) for row in self.store.query(
            sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(self.store.table(name)))]
            for name in ("offers", "partners", "relationships", "smart_links")}


@pytest.fixture(scope="module")
def module_database(infra: SessionInfrastructure) -> str:
    """One database for the module (creating one costs seconds): each test its own schema."""
    return infra.new_database()


@pytest.fixture
def feed(module_database: str) -> Iterator[Feed]:
    fed = Feed(module_database, fresh_id("tracking").replace("-", "_"))
    yield fed
    fed.store.close()


def history(offer_id: str, partner_id: str) -> list[Envelope[Event]]:
    """One offer's and one partner's life, oldest first; it ends deleted, active, approved
    with the relationship's own targeting, with its postback token rotated (the old one
    good for an hour) and published again."""
    start = utc_now() - timedelta(hours=1)
    offer = offer_created(offer_id, DESTINATION, visibility=Visibility.PRIVATE, fallback_url=FALLBACK)
    rotated_security = offer.conversion_security.model_copy(update={"token_sha256": sha256(NEW_TOKEN)})  # type: ignore[union-attr]
    events: list[Event] = [
        offer,
        partner_created(partner_id, PartnerStatus.PENDING),
        approval(offer_id, partner_id, approved=False),
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.PAUSED),
        PartnerStatusChanged(partner_id=partner_id, status=PartnerStatus.ACTIVE),
        OfferPostbackTokenRotated(offer_id=offer_id, token_sha256=sha256(NEW_TOKEN),
                                  previous_token_sha256=sha256(POSTBACK_TOKEN),
                                  previous_valid_until=utc_now() + timedelta(hours=1)),
        OfferUpdated(**{**offer.model_dump(), "unique_click_hours": 6, "status": OfferStatus.PAUSED,
                        "conversion_security": rotated_security, "deep_link_domains": ("shop.example",),
                        "landing_pages": (PAGE,), "targeting": TARGETING,
                        "fail_traffic": FailTraffic(mode=FailTrafficMode.WEIGHT,
                                                    offers=(RoutedOffer(offer_id="o-spare", weight=2),)),
                        "changed": ("unique_click_hours", "landing_pages", "targeting", "fail_traffic")}),
        SmartLinkSet(smart_link_id=f"s-{offer_id}", name="Mix", offers=(RoutedOffer(offer_id=offer_id),)),
        SmartLinkSet(smart_link_id=f"s-{offer_id}", name="Mix", fallback_url=FALLBACK,
                     offers=(RoutedOffer(offer_id="o-spare", priority=2), RoutedOffer(offer_id=offer_id))),
        approval(offer_id, partner_id, approved=True).model_copy(update={"targeting": NARROWED}),
        OfferStatusChanged(offer_id=offer_id, status=OfferStatus.DELETED),
        PartnerApiKeyIssued(partner_id=partner_id, key_id="key_1", key_sha256="0" * 64,
                            prefix="afx_live_0000", issued_at=start),  # not routed by: skipped
    ]
    return [Envelope.wrap(event, producer="test", occurred_at=start + timedelta(seconds=n))
            for n, event in enumerate(events)]


def final_link(offer_id: str, partner_id: str, rotation_ends: datetime | None) -> LinkState:
    published = security_of(security())
    assert published is not None
    rotated = replace(published, token_sha256=sha256(NEW_TOKEN), previous_token_sha256=sha256(POSTBACK_TOKEN),
                      previous_valid_until=rotation_ends)
    return LinkState(
        offer=OfferRoute(offer_id, DESTINATION, OfferStatus.DELETED, Visibility.PRIVATE, FALLBACK, rotated,
                         unique_click_hours=6, destinations=destinations.Destinations(
                             ("shop.example",), (destinations.LandingPage("spring", PAGE.url, 2),)),
                         targeting=targeting.Targeting(
                             countries=targeting.AllowDeny(frozenset({"US", "CA"})),
                             referrer_domains=targeting.Domains(deny=("spam.example",)),
                             day_parting=targeting.DayParting(ZoneInfo("Europe/Paris"), frozenset({1, 2}),
                                                              frozenset({9}))),
                         fail_traffic=Alternatives.weighted([Candidate("o-spare", 2)])),
        partner=PartnerRoute(partner_id, PartnerStatus.ACTIVE),
        approved=True,
        targeting=targeting.Targeting(countries=targeting.AllowDeny(frozenset({"CA"})),
                                      devices=targeting.AllowDeny(deny=frozenset({"tablet"}))),
    )


@pytest.mark.parametrize("seed", range(4))
def test_the_view_ends_the_same_whatever_the_order_redelivery_and_runs(
    module_database: str, feed: Feed, seed: int,
) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    envelopes = history(offer_id, partner_id)
    shuffle = random.Random(seed)
    republished = [envelope.model_copy(update={"event_id": fresh.event_id})
                   for envelope, fresh in zip(envelopes, history(offer_id, partner_id), strict=True)]
    one_at_a_time = Feed(module_database, f"{feed.store.schema}_one_by_one")
    try:
        assert all(one_at_a_time.apply(envelopes))
        rotation = envelopes[5].payload
        assert isinstance(rotation, OfferPostbackTokenRotated)
        final = final_link(offer_id, partner_id, rotation.previous_valid_until)
        assert one_at_a_time.routing.view.link(offer_id, partner_id) == final
        tiers = ((Candidate(offer_id),), (Candidate("o-spare"),))
        smart_link = SmartLinkRoute(f"s-{offer_id}", Alternatives(tiers), FALLBACK)
        assert one_at_a_time.routing.view.smart_link(f"s-{offer_id}") == smart_link

        assert all(feed.apply(shuffle.sample(envelopes, len(envelopes)), runs=shuffle))
        # Redelivered under the same event_ids: the inbox drops them.
        assert not any(feed.apply(shuffle.sample(envelopes, len(envelopes)), runs=shuffle))
        # Re-sent under new event_ids (a producer retry), in yet another order: nothing changes.
        assert all(feed.apply(shuffle.sample(republished, len(republished)), runs=shuffle))
        assert feed.routing.view.link(offer_id, partner_id) == final
        assert feed.routing.view.smart_link(f"s-{offer_id}") == smart_link
        assert feed.tables() == one_at_a_time.tables()
        # A restart rebuilds the memory view from the committed tables.
        assert Routing(feed.store).view.link(offer_id, partner_id) == final
        assert Routing(feed.store).view.smart_link(f"s-{offer_id}") == smart_link
    finally:
        one_at_a_time.store.close()


@pytest.mark.parametrize("seed", range(2))
def test_a_link_looked_up_between_every_two_facts_is_never_older_than_the_view(
    module_database: str, feed: Feed, seed: int,
) -> None:
    """The view keeps each link's state between changes: after each fact, in any order,
    the link it gives is the one a view rebuilt from the committed tables gives."""
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    envelopes = random.Random(seed).sample(history(offer_id, partner_id), len(history(offer_id, partner_id)))
    for envelope in envelopes:
        feed.apply([envelope])
        kept = feed.routing.view.link(offer_id, partner_id)
        assert feed.routing.view.link(offer_id, partner_id) is kept  # kept, not built again
        assert kept == Routing(feed.store).view.link(offer_id, partner_id)


def test_made_up_links_are_not_kept_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing_view, "LINKS_KEPT", 3)
    view = routing_view.RoutingView()
    looked_up = [view.link("o-1", f"p-{n}") for n in range(10)]

    assert len(view._links) == 3
    assert view.link("o-1", "p-9") == looked_up[9]
    assert view.link("o-1", "p-9") is not looked_up[9]  # built again, not kept


def test_an_offer_known_only_by_a_status_change_is_not_routable_yet(feed: Feed) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    feed.apply([Envelope.wrap(OfferStatusChanged(offer_id=offer_id, status=OfferStatus.ACTIVE), producer="t"),
                Envelope.wrap(partner_created(partner_id), producer="t")])

    assert feed.routing.view.link(offer_id, partner_id) == LinkState(
        offer=None, partner=PartnerRoute(partner_id, PartnerStatus.ACTIVE), approved=None
    )


def test_an_offer_state_older_than_a_rotation_does_not_bring_the_old_token_back(feed: Feed) -> None:
    offer_id = fresh_id("o")
    start = utc_now() - timedelta(minutes=5)
    offer = offer_created(offer_id, DESTINATION)
    rotation = OfferPostbackTokenRotated(offer_id=offer_id, token_sha256=sha256(NEW_TOKEN),
                                         previous_token_sha256=sha256(POSTBACK_TOKEN),
                                         previous_valid_until=start + timedelta(minutes=1))
    feed.apply([Envelope.wrap(rotation, producer="t", occurred_at=start + timedelta(seconds=2)),
                Envelope.wrap(offer, producer="t", occurred_at=start)])  # the older state arrives late

    route = feed.routing.view.offer(offer_id)
    assert route is not None and route.security is not None
    assert route.security.check_postback(POSTBACK_TOKEN, None, utc_now()) is Refusal.TOKEN_INVALID
    assert route.security.check_postback(NEW_TOKEN, None, utc_now()) is None


async def test_click_and_postback_answer_503_when_the_log_does_not_acknowledge(feed: Feed) -> None:
    offer_id, partner_id = fresh_id("o"), fresh_id("p")
    feed.apply(history(offer_id, partner_id)[:5])  # paused, with a fallback
    unreachable = Publisher(f"127.0.0.1:{free_port()}", client_id="tracking-tests-unreachable")

    async def ready() -> bool:
        return True

    partners_log = LogCatchUp(feed.store, "afflux.partners.v1", f"127.0.0.1:{free_port()}")
    settings = IntakeSettings(publish_timeout=0.3, catch_up_timeout=0.3)
    app = create_app(Intake(feed.routing.view, unreachable, partners_log, settings), ready)
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
