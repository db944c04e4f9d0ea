"""How the domain's value objects are stored inside events (JSON in PostgreSQL).

The stored names (``partners.terms``, ``partners.billing``) are part of the stored
history, like event topics: never rename them. Decimals are stored as strings so
that no amount ever passes through a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from afflux_partners.domain.values import Billing, BillingFrequency, ConversionSecurity, PayoutType, Terms


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


class TermsAsDict(Transcoding):
    type = Terms
    name = "partners.terms"

    def encode(self, obj: Terms) -> dict[str, Any]:
        return {"type": obj.type.value, "amount": _text(obj.amount), "percent": _text(obj.percent)}

    def decode(self, data: dict[str, Any]) -> Terms:
        return Terms(PayoutType(data["type"]), _decimal(data["amount"]), _decimal(data["percent"]))


class BillingAsDict(Transcoding):
    type = Billing
    name = "partners.billing"

    def encode(self, obj: Billing) -> dict[str, Any]:
        return {
            "currency": obj.currency,
            "frequency": obj.frequency.value,
            "minimum_payout": str(obj.minimum_payout),
        }

    def decode(self, data: dict[str, Any]) -> Billing:
        return Billing(data["currency"], BillingFrequency(data["frequency"]), Decimal(data["minimum_payout"]))


class ConversionSecurityAsDict(Transcoding):
    type = ConversionSecurity
    name = "partners.conversion_security"

    def encode(self, obj: ConversionSecurity) -> dict[str, Any]:
        return {"token_required": obj.token_required, "allowed_ips": list(obj.allowed_ips),
                "pixel_allowed": obj.pixel_allowed}

    def decode(self, data: dict[str, Any]) -> ConversionSecurity:
        return ConversionSecurity(data["token_required"], tuple(data["allowed_ips"]), data["pixel_allowed"])


def register_value_transcodings(transcoder: JSONTranscoder) -> None:
    """Teach an event-store transcoder the partners context's value objects."""
    transcoder.register(TermsAsDict())
    transcoder.register(BillingAsDict())
    transcoder.register(ConversionSecurityAsDict())
