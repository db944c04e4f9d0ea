"""A service runs exactly what its wiring declares (the AsyncAPI document is made from
the declarations, so anything run beside them would be missing from it)."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import pytest
from fastapi import FastAPI

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    TRACKING,
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    Event,
    OfferCreated,
    PartnerCreated,
)
from afflux_plumbing.relay import publishing
from afflux_plumbing.runs import Handlers, Run, handled_types, handles
from afflux_plumbing.service import ServiceRuntime
from afflux_plumbing.settings import ServiceSettings
from afflux_plumbing.store import Changes, TrackedApplication
from afflux_plumbing.wiring import DeclaredProducer, Publication, Subscription, Undeclared, Wiring


class WiredSettings(ServiceSettings):
    service_name: ClassVar[str] = "wired"
    port: int = 0
    db_schema: str = "wired"


def settings() -> WiredSettings:
    return WiredSettings(DATABASE_URL="postgresql://nowhere/none", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")


class Folds:
    """Handlers of two topics, as a service's store has them."""

    @handles(PartnerCreated, OfferCreated)
    def on_partners(self, run: Run) -> Changes:
        return Changes()

    @handles(ConversionAttributed)
    def on_attribution(self, run: Run) -> Changes:
        return Changes()


PARTNERS_FEED = Subscription.of(Folds, "partners", [PARTNERS])
WIRING = Wiring("wired", subscriptions=(PARTNERS_FEED,))
NO_STORE = cast(TrackedApplication, None)
"""The checks come before the consumer is made: no store is needed to see them refuse."""


def test_a_subscription_takes_the_handled_events_of_its_topics_only() -> None:
    assert handled_types(Folds) == {PartnerCreated, OfferCreated, ConversionAttributed}
    assert PARTNERS_FEED.events == {PartnerCreated, OfferCreated}
    assert [s.group for s in Subscription.per_topic(Folds)] == ["partners", "attribution"]
    with pytest.raises(Undeclared, match=r"afflux\.tracking\.v1"):
        Subscription.of(Folds, "tracking", [PARTNERS, TRACKING])


async def test_the_runtime_refuses_a_consumer_its_wiring_does_not_declare() -> None:
    runtime = ServiceRuntime(settings(), WIRING)
    other = Subscription.of(Folds, "attribution", [ATTRIBUTION])
    with pytest.raises(Undeclared, match="'attribution', which its wiring does not declare"):
        runtime.consume(NO_STORE, other, handlers=Handlers.of(Folds()))
    await runtime.publisher.stop()


async def test_the_runtime_refuses_handlers_taking_an_event_the_declaration_does_not_show() -> None:
    runtime = ServiceRuntime(settings(), WIRING)
    fewer = Handlers({PartnerCreated: lambda run: Changes()})
    with pytest.raises(Undeclared, match="handles PartnerCreated; its wiring declares OfferCreated, "
                                          "PartnerCreated"):
        runtime.consume(NO_STORE, PARTNERS_FEED, handlers=fewer)
    await runtime.publisher.stop()


async def test_a_declared_consumer_or_publisher_that_does_not_run_stops_the_service() -> None:
    relay = Publication.of("relay", [ConversionAttributed])
    runtime = ServiceRuntime(settings(), Wiring("wired", (PARTNERS_FEED,), (relay,)))
    with pytest.raises(Undeclared, match="declares consumer 'partners', publisher 'relay' but does not run"):
        await runtime.serve(FastAPI())
    await runtime.publisher.stop()


async def test_a_wiring_of_another_service_is_refused() -> None:
    with pytest.raises(Undeclared, match="wired is wired as 'other'"):
        ServiceRuntime(settings(), Wiring("other"))


class Sent:
    def __init__(self) -> None:
        self.envelopes: list[Envelope[Any]] = []

    async def publish(self, envelope: Envelope[Any]) -> None:
        self.envelopes.append(envelope)


def _click() -> ClickRecorded:
    return ClickRecorded.model_validate({
        "transaction_id": "t1", "offer_id": "o1", "partner_id": "p1", "clicked_at": "2026-12-07T00:00:00Z",
        "outcome": "valid", "redirect_url": "https://example.com/"})


async def test_a_producer_sends_only_the_events_its_publication_declares() -> None:
    sent = Sent()
    producer = DeclaredProducer(sent, Publication.of("intake", [ClickRecorded]))
    await producer.publish(Envelope.wrap(_click(), producer="test"))
    partner = PartnerCreated(partner_id="p1", name="Ann", email="ann@example.com")
    with pytest.raises(Undeclared, match="'intake' sends PartnerCreated"):
        await producer.publish(Envelope.wrap(partner, producer="test"))
    assert [e.event_type for e in sent.envelopes] == ["ClickRecorded"]


def _created(stored: Any) -> PartnerCreated:
    return PartnerCreated(partner_id="p1", name=stored.name, email="a@b.example")


def _either(stored: Any) -> PartnerCreated | OfferCreated:
    """A translation that may give either event: both are published."""
    return _created(stored)


def _anything(stored: Any) -> Event:
    """A translation annotated with the bare Event: what it publishes cannot be read."""
    return _created(stored)


def test_a_relay_publishes_the_events_its_translations_are_annotated_with() -> None:
    assert publishing("test", {"a": _created, "b": _either}).events == {PartnerCreated, OfferCreated}
    with pytest.raises(TypeError, match="_anything must be annotated with the contract event"):
        publishing("test", {"c": _anything})


def test_a_group_is_declared_once() -> None:
    again = Subscription.of([PartnerCreated], "partners", [PARTNERS])
    with pytest.raises(Undeclared, match="wired declares partners twice"):
        Wiring("wired", subscriptions=(PARTNERS_FEED, again))
