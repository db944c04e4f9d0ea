"""Afflux events a subscriber test publishes: attributed conversions of one partner."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal

from afflux_contracts import (
    ConversionAttributed,
    ConversionStatus,
    ConversionStatusChanged,
    Envelope,
    Money,
    StatusChange,
)

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def attributed(partner_id: str, payout: str, currency: str = "USD") -> Envelope[ConversionAttributed]:
    return Envelope.wrap(ConversionAttributed(
        conversion_id=secrets.token_hex(16), transaction_id=secrets.token_hex(16),
        partner_id=partner_id, offer_id="offer-1", event="conversion",
        payout=Money(amount=Decimal(payout), currency=currency), status=ConversionStatus.APPROVED,
        clicked_at=AT, converted_at=AT), producer="attribution")


def reversed_(conversion: ConversionAttributed) -> Envelope[ConversionStatusChanged]:
    return Envelope.wrap(ConversionStatusChanged(
        conversion_id=conversion.conversion_id, partner_id=conversion.partner_id,
        offer_id=conversion.offer_id, status=StatusChange.REVERSED,
        previous_status=ConversionStatus.APPROVED, payout=conversion.payout, reason="refund",
        changed_at=AT), producer="attribution")
