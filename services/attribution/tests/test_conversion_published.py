"""The Conversion aggregate and what the relay publishes for it (pure: no I/O)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from attribution_rules_fixtures import CLICKED_AT, click, credited, report

from afflux_attribution.application.published import to_envelope
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.rules import Attributed, Rejected
from afflux_contracts import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    Money,
    RejectionReason,
    decode,
    encode,
)


def test_a_conversion_id_always_maps_to_the_same_aggregate_id() -> None:
    assert Conversion.create_id("conv-1") == Conversion.create_id("conv-1")
    assert Conversion.create_id("conv-1") != Conversion.create_id("conv-2")
    assert Conversion.decide(report(), Rejected(RejectionReason.CLICK_NOT_FOUND, "no"), "e").id \
        == Conversion.create_id("conv-1")


def test_attributed_conversion_is_published_as_conversion_attributed_keyed_by_partner() -> None:
    conversion = Conversion.decide(
        report(sale_amount=Decimal("120.00"), order_id="order-9"),
        Attributed(credited(click(partner_id="partner-7")), "USD", Decimal("9.60"), Decimal("18.00")),
        causation_id="cause-1",
    )
    stored = conversion.collect_events()[0]
    envelope = to_envelope(stored)

    assert envelope is not None
    assert envelope.payload == ConversionAttributed(
        conversion_id="conv-1", transaction_id="tx-1", partner_id="partner-7", offer_id="offer-1",
        event="conversion", order_id="order-9", sale_amount=Decimal("120.00"),
        payout=Money(amount=Decimal("9.60"), currency="USD"),
        revenue=Money(amount=Decimal("18.00"), currency="USD"),
        status=ConversionStatus.APPROVED, clicked_at=CLICKED_AT,
        converted_at=CLICKED_AT + timedelta(hours=2),
    )
    assert envelope.key == "partner-7"
    assert (envelope.producer, envelope.causation_id, envelope.correlation_id) == \
        ("attribution", "cause-1", "tx-1")
    assert envelope.occurred_at == stored.timestamp
    assert decode(encode(envelope)).payload.payout.amount == Decimal("9.60")  # type: ignore[attr-defined]


def test_a_resent_decision_keeps_its_event_id() -> None:
    conversion = Conversion.decide(report(), Attributed(credited(click()), "USD", Decimal("5.00"), None), "c")
    stored = conversion.collect_events()[0]
    first, again = to_envelope(stored), to_envelope(stored)
    assert first is not None and again is not None
    assert first.event_id == again.event_id


def test_rejected_conversion_is_published_with_its_reason_and_what_was_known() -> None:
    conversion = Conversion.decide(
        report(order_id="order-1"),
        Rejected(RejectionReason.DUPLICATE, "order order-1 was already credited", credited(), "USD"),
        causation_id="cause-2",
    )
    envelope = to_envelope(conversion.collect_events()[0])

    assert envelope is not None
    assert envelope.payload == ConversionRejected(
        conversion_id="conv-1", reason=RejectionReason.DUPLICATE,
        message="order order-1 was already credited", transaction_id="tx-1", partner_id="partner-1",
        offer_id="offer-1", order_id="order-1", converted_at=CLICKED_AT + timedelta(hours=2),
    )
    assert envelope.key == "partner-1"
    assert conversion.status is ConversionStatus.REJECTED and conversion.payout is None


def test_rejection_without_a_click_is_keyed_by_its_transaction_id() -> None:
    conversion = Conversion.decide(report(transaction_id="tx-lost"),
                                   Rejected(RejectionReason.CLICK_NOT_FOUND, "no click"), "cause-3")
    envelope = to_envelope(conversion.collect_events()[0])
    assert envelope is not None and envelope.key == "tx-lost"
    assert envelope.payload.partner_id is None


def test_a_held_conversion_is_published_with_why_and_the_clicks_subs() -> None:
    held = Attributed(credited(click(sub1="newsletter", sub5="c-9")), "USD", Decimal("9.60"), None,
                      ConversionStatus.PENDING, reason="pixel_review")
    stored = Conversion.decide(report(), held, "cause-1").collect_events()[0]
    envelope = to_envelope(stored)

    assert envelope is not None and isinstance(envelope.payload, ConversionAttributed)
    assert (envelope.payload.status, envelope.payload.reason) == (ConversionStatus.PENDING, "pixel_review")
    published = envelope.payload
    assert (published.sub1, published.sub2, published.sub5) == ("newsletter", None, "c-9")
    assert envelope.payload.appeal is None
