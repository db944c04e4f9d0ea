"""The running service (real broker and PostgreSQL): a decision published on
``afflux.attribution.v1`` names the partners events it priced with and every rule it
checked; a CPC click is priced through the outbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from attribution_fixtures import RunningAttribution, cpa, fresh_id

from afflux_contracts import (
    ATTRIBUTION,
    ClickPriced,
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    Event,
    OfferCreated,
    PartnerCreated,
    PayoutType,
    RelationshipSet,
    Terms,
    utc_now,
)
from afflux_infra.testing import eventually, read_envelopes


async def published_program(attribution: RunningAttribution, payout: Terms,
                            custom: Terms | None = None) -> tuple[str, str, list[str]]:
    """An offer, its partner and their relationship on the partners log; their event ids."""
    offer_id, partner_id = fresh_id("offer"), fresh_id("partner")
    at = utc_now() - timedelta(hours=1)
    events: list[Event] = [
        PartnerCreated(partner_id=partner_id, name="p", email="p@example.com"),
        OfferCreated(offer_id=offer_id, name="o", destination_url="https://shop.example/", currency="USD",
                     payout=payout),
        RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=True, payout=custom),
    ]
    envelopes = [Envelope.wrap(event, producer="test", occurred_at=at) for event in events]
    for envelope in envelopes:
        await attribution.publish(envelope)
    return offer_id, partner_id, [str(envelope.event_id) for envelope in envelopes]


async def test_a_published_decision_names_its_terms_versions_and_its_trace(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id, (_, offer_event, relationship_event) = await published_program(
        attribution, cpa("5.00"), custom=cpa("6.00"))
    transaction_id = await attribution.click(offer_id, partner_id)
    reported = await attribution.report(transaction_id, order_id=fresh_id("order"))

    decided = await attribution.decided(reported.payload.conversion_id)
    await attribution.relayed()
    [on_log] = await attribution.published(reported.payload.conversion_id)

    assert decided["payout"] == {"amount": "6.00", "currency": "USD"}
    assert isinstance(on_log.envelope.payload, ConversionAttributed)
    terms = on_log.envelope.payload.terms
    assert terms is not None
    assert (terms.offer_event_id, terms.relationship_event_id, terms.payout_source) == (
        offer_event, relationship_event, "relationship")
    assert [check.rule for check in on_log.envelope.payload.trace] == [c["rule"] for c in decided["trace"]]
    assert on_log.wire["payload"]["trace"][0] == {"rule": "credit", "outcome": "passed",
                                                  "detail": decided["trace"][0]["detail"]}


async def test_a_valid_click_on_a_cpc_offer_is_published_as_click_priced(
    attribution: RunningAttribution,
) -> None:
    offer_id, partner_id, _ = await published_program(
        attribution, Terms(type=PayoutType.CPC, amount=Decimal("0.30")),
        custom=Terms(type=PayoutType.CPC, amount=Decimal("0.35")))
    await eventually(lambda: bool(attribution.store.views.offer_terms({offer_id})))
    click = ClickRecorded(transaction_id=fresh_id("tx"), offer_id=offer_id, partner_id=partner_id,
                          clicked_at=utc_now(), sub1="spring mail", sub3="banner")
    await attribution.publish(Envelope.wrap(click, producer="test", occurred_at=click.clicked_at))

    async def priced() -> list[ClickPriced]:
        records = await read_envelopes(attribution.bootstrap, ATTRIBUTION.name, ATTRIBUTION.partitions)
        return [e.payload for _, e in records
                if isinstance(e.payload, ClickPriced) and e.payload.transaction_id == click.transaction_id]

    await eventually(lambda: attribution.store.click(click.transaction_id) is not None)
    found: list[ClickPriced] = []
    for _ in range(40):
        await attribution.relayed()
        found = await priced()
        if found:
            break
    [price] = found  # the partner's custom amount per click
    assert (price.partner_id, price.payout.amount) == (partner_id, Decimal("0.35"))
    assert price.payout.currency == "USD"
    assert (price.sub1, price.sub2, price.sub3) == ("spring mail", None, "banner")  # the click's subs
