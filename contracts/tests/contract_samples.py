"""One realistic instance of every contract event, so each is exercised by the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from afflux_contracts import (
    Billing,
    ClickOutcome,
    ClickRecorded,
    ConversionAttributed,
    ConversionRejected,
    ConversionReported,
    ConversionSecurity,
    ConversionStatus,
    ConversionStatusChanged,
    Event,
    ImpressionRecorded,
    Money,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerPostbackDelivered,
    PartnerPostbackFailed,
    PartnerStatus,
    PartnerStatusChanged,
    PayoutType,
    RejectionReason,
    RelationshipSet,
    StatusChange,
    Terms,
)

CLICKED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
CONVERTED = datetime(2026, 11, 3, 18, 5, 12, 345000, tzinfo=UTC)
EIGHT_PERCENT = Terms(type=PayoutType.CPS, percent=Decimal("8"))

SAMPLES: list[Event] = [
    PartnerCreated(partner_id="p1", name="Coupon Hub", email="ops@couponhub.example",
                   type="coupon", tags=("eu", "coupon"),
                   billing=Billing(currency="usd", minimum_payout=Decimal("50.00"))),
    PartnerStatusChanged(partner_id="p1", status=PartnerStatus.SUSPENDED),
    OfferCreated(offer_id="o1", name="Spring sale", currency="USD", payout=EIGHT_PERCENT,
                 destination_url="https://shop.example/landing?tid={transaction_id}&s={sub1}",
                 revenue=Terms(type=PayoutType.CPA_CPS, amount=Decimal("1.50"), percent=Decimal("10")),
                 fallback_url="https://shop.example/",
                 conversion_security=ConversionSecurity(token_sha256="e" * 64,
                                                        allowed_ips=("203.0.113.0/24",))),
    OfferStatusChanged(offer_id="o1", status=OfferStatus.PAUSED),
    RelationshipSet(offer_id="o1", partner_id="p1", approved=True,
                    payout=Terms(type=PayoutType.CPA, amount=Decimal("12.50")),
                    coupon_codes=("SPRING10",), postback_url="https://p1.example/pb?c={transaction_id}"),
    ClickRecorded(transaction_id="a" * 32, offer_id="o1", partner_id="p1", clicked_at=CLICKED,
                  outcome=ClickOutcome.VALID, redirect_url="https://shop.example/landing?tid=aaa",
                  sub1="newsletter week 45", ip="203.0.113.9", user_agent="Mozilla/5.0", unique=False),
    ImpressionRecorded(impression_id="b" * 32, offer_id="o1", partner_id="p1", impressed_at=CLICKED,
                       sub1="banner-300x250", ip="203.0.113.9", user_agent="Mozilla/5.0"),
    ConversionReported(conversion_id="c" * 32, transaction_id="a" * 32, amount=Decimal("120.00"),
                       currency="USD", order_id="ORDER-1001", reported_at=CONVERTED, offer_id="o1"),
    ConversionAttributed(conversion_id="c" * 32, transaction_id="a" * 32, partner_id="p1",
                         offer_id="o1", event="conversion", order_id="ORDER-1001",
                         sale_amount=Decimal("120.00"),
                         payout=Money(amount=Decimal("9.60"), currency="USD"),
                         revenue=Money(amount=Decimal("13.50"), currency="USD"),
                         clicked_at=CLICKED, converted_at=CONVERTED),
    ConversionRejected(conversion_id="d" * 32, reason=RejectionReason.DUPLICATE,
                       message="order ORDER-1001 was already credited on offer o1",
                       transaction_id="a" * 32, partner_id="p1", offer_id="o1",
                       order_id="ORDER-1001", converted_at=CONVERTED),
    ConversionStatusChanged(conversion_id="c" * 32, partner_id="p1", offer_id="o1",
                            status=StatusChange.REVERSED, previous_status=ConversionStatus.APPROVED,
                            payout=Money(amount=Decimal("9.60"), currency="USD"),
                            reason="chargeback", note="bank dispute #4471",
                            changed_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
    PartnerPostbackDelivered(delivery_id="e" * 32, conversion_id="c" * 32, partner_id="p1", offer_id="o1",
                             url="https://p1.example/pb?c=ccc&token=***", attempts=4, status_code=200,
                             delivered_at=CONVERTED),
    PartnerPostbackFailed(delivery_id="f" * 32, conversion_id="c" * 32, partner_id="p1", offer_id="o1",
                          url="http://127.0.0.1/pb", attempts=0,
                          error="refused: 127.0.0.1 is not a public address", failed_at=CONVERTED),
]
