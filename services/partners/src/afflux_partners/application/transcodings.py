"""How the domain's value objects are stored inside events (JSON in PostgreSQL).

The stored names (``partners.terms``, ``partners.billing``...) are part of the stored
history, like event topics: never rename them. Decimals are stored as strings so
that no amount ever passes through a float. A field added later is read with its
default from events stored before it existed.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from afflux_contracts.creatives import ImageFormat
from afflux_partners.domain.creative import BannerImage
from afflux_partners.domain.values import (
    AllowDeny,
    Billing,
    BillingConversion,
    BillingFrequency,
    Cap,
    CapMetric,
    CapPeriod,
    Contact,
    ConversionSecurity,
    DayParting,
    FailTraffic,
    FailTrafficMode,
    FraudAction,
    FraudSettings,
    LandingPage,
    OfferEvent,
    PartnerPostback,
    PayoutType,
    PostbackMethod,
    RelationshipEvent,
    RoutedOffer,
    Targeting,
    Terms,
    Tier,
)


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
            "method": obj.method,
            "conversion": obj.conversion.value,
        }

    def decode(self, data: dict[str, Any]) -> Billing:
        return Billing(data["currency"], BillingFrequency(data["frequency"]), Decimal(data["minimum_payout"]),
                       data.get("method"), BillingConversion(data.get("conversion", "none")))


class ConversionSecurityAsDict(Transcoding):
    type = ConversionSecurity
    name = "partners.conversion_security"

    def encode(self, obj: ConversionSecurity) -> dict[str, Any]:
        return {"token_required": obj.token_required, "allowed_ips": list(obj.allowed_ips),
                "pixel_allowed": obj.pixel_allowed, "pixel_review": obj.pixel_review}

    def decode(self, data: dict[str, Any]) -> ConversionSecurity:
        return ConversionSecurity(data["token_required"], tuple(data["allowed_ips"]), data["pixel_allowed"],
                                  data.get("pixel_review", True))


class ContactAsDict(Transcoding):
    type = Contact
    name = "partners.contact"

    def encode(self, obj: Contact) -> dict[str, Any]:
        return {"name": obj.name, "email": obj.email, "role": obj.role}

    def decode(self, data: dict[str, Any]) -> Contact:
        return Contact(data["name"], data["email"], data.get("role"))


class PartnerPostbackAsDict(Transcoding):
    type = PartnerPostback
    name = "partners.partner_postback"

    def encode(self, obj: PartnerPostback) -> dict[str, Any]:
        return {"url": obj.url, "method": obj.method.value, "status_changes": obj.status_changes}

    def decode(self, data: dict[str, Any]) -> PartnerPostback:
        return PartnerPostback(data["url"], PostbackMethod(data["method"]), data["status_changes"])


class OfferEventAsDict(Transcoding):
    """Terms inside are transcoded by ``TermsAsDict`` (the transcoder recurses)."""

    type = OfferEvent
    name = "partners.offer_event"

    def encode(self, obj: OfferEvent) -> dict[str, Any]:
        return {"name": obj.name, "payout": obj.payout, "revenue": obj.revenue,
                "allow_duplicates": obj.allow_duplicates, "requires_approval": obj.requires_approval,
                "fires_partner_postback": obj.fires_partner_postback,
                "max_sale_amount": _text(obj.max_sale_amount), "max_payout": _text(obj.max_payout)}

    def decode(self, data: dict[str, Any]) -> OfferEvent:
        return OfferEvent(data["name"], data["payout"], data["revenue"], data["allow_duplicates"],
                          data["requires_approval"], data["fires_partner_postback"],
                          _decimal(data.get("max_sale_amount")), _decimal(data.get("max_payout")))


class CapAsDict(Transcoding):
    type = Cap
    name = "partners.cap"

    def encode(self, obj: Cap) -> dict[str, Any]:
        return {"metric": obj.metric.value, "period": obj.period.value, "limit": str(obj.limit),
                "per_partner": obj.per_partner, "hard": obj.hard}

    def decode(self, data: dict[str, Any]) -> Cap:
        return Cap(CapMetric(data["metric"]), CapPeriod(data["period"]), Decimal(data["limit"]),
                   data["per_partner"], data["hard"])


class TierAsDict(Transcoding):
    type = Tier
    name = "partners.tier"

    def encode(self, obj: Tier) -> dict[str, Any]:
        return {"min_conversions": obj.min_conversions, "payout": obj.payout}

    def decode(self, data: dict[str, Any]) -> Tier:
        return Tier(data["min_conversions"], data["payout"])


class FraudSettingsAsDict(Transcoding):
    type = FraudSettings
    name = "partners.fraud_settings"

    def encode(self, obj: FraudSettings) -> dict[str, Any]:
        return {"min_seconds_to_convert": obj.min_seconds_to_convert,
                "max_conversions_per_ip_per_day": obj.max_conversions_per_ip_per_day,
                "blocked_ips": list(obj.blocked_ips), "blocked_sub1": list(obj.blocked_sub1),
                "action": obj.action.value, "max_clicks_per_ip_per_day": obj.max_clicks_per_ip_per_day,
                "max_clicks_per_visitor_per_day": obj.max_clicks_per_visitor_per_day,
                "max_impressions_per_ip_per_day": obj.max_impressions_per_ip_per_day,
                "blocked_subs": {name: list(values) for name, values in obj.blocked_subs}}

    def decode(self, data: dict[str, Any]) -> FraudSettings:
        return FraudSettings(data["min_seconds_to_convert"], data["max_conversions_per_ip_per_day"],
                             tuple(data["blocked_ips"]), tuple(data["blocked_sub1"]),
                             FraudAction(data["action"]), data.get("max_clicks_per_ip_per_day"),
                             data.get("max_clicks_per_visitor_per_day"),
                             data.get("max_impressions_per_ip_per_day"),
                             tuple((sub, tuple(deny)) for sub, deny in data.get("blocked_subs", {}).items()))


class RelationshipEventAsDict(Transcoding):
    type = RelationshipEvent
    name = "partners.relationship_event"

    def encode(self, obj: RelationshipEvent) -> dict[str, Any]:
        return {"name": obj.name, "payout": obj.payout, "revenue": obj.revenue}

    def decode(self, data: dict[str, Any]) -> RelationshipEvent:
        return RelationshipEvent(data["name"], data["payout"], data["revenue"])


class LandingPageAsDict(Transcoding):
    type = LandingPage
    name = "partners.landing_page"

    def encode(self, obj: LandingPage) -> dict[str, Any]:
        return {"id": obj.id, "name": obj.name, "url": obj.url, "weight": obj.weight}

    def decode(self, data: dict[str, Any]) -> LandingPage:
        return LandingPage(data["id"], data["name"], data["url"], data["weight"])


class AllowDenyAsDict(Transcoding):
    type = AllowDeny
    name = "partners.allow_deny"

    def encode(self, obj: AllowDeny) -> dict[str, Any]:
        return {"allow": list(obj.allow), "deny": list(obj.deny)}

    def decode(self, data: dict[str, Any]) -> AllowDeny:
        return AllowDeny(tuple(data["allow"]), tuple(data["deny"]))


class DayPartingAsDict(Transcoding):
    type = DayParting
    name = "partners.day_parting"

    def encode(self, obj: DayParting) -> dict[str, Any]:
        return {"time_zone": obj.time_zone, "weekdays": list(obj.weekdays), "hours": list(obj.hours)}

    def decode(self, data: dict[str, Any]) -> DayParting:
        return DayParting(data["time_zone"], tuple(data["weekdays"]), tuple(data["hours"]))


class TargetingAsDict(Transcoding):
    """Its lists and day-parting inside are transcoded by the two above."""

    type = Targeting
    name = "partners.targeting"

    def encode(self, obj: Targeting) -> dict[str, Any]:
        return {"countries": obj.countries, "devices": obj.devices,
                "operating_systems": obj.operating_systems, "browsers": obj.browsers,
                "referrer_domains": obj.referrer_domains, "day_parting": obj.day_parting}

    def decode(self, data: dict[str, Any]) -> Targeting:
        return Targeting(data["countries"], data["devices"], data["operating_systems"], data["browsers"],
                         data["referrer_domains"], data["day_parting"])


class RoutedOfferAsDict(Transcoding):
    type = RoutedOffer
    name = "partners.routed_offer"

    def encode(self, obj: RoutedOffer) -> dict[str, Any]:
        return {"offer_id": obj.offer_id, "weight": obj.weight, "priority": obj.priority}

    def decode(self, data: dict[str, Any]) -> RoutedOffer:
        return RoutedOffer(data["offer_id"], data["weight"], data["priority"])


class FailTrafficAsDict(Transcoding):
    """Its offers inside are transcoded by the one above."""

    type = FailTraffic
    name = "partners.fail_traffic"

    def encode(self, obj: FailTraffic) -> dict[str, Any]:
        return {"mode": obj.mode.value, "offers": list(obj.offers)}

    def decode(self, data: dict[str, Any]) -> FailTraffic:
        return FailTraffic(FailTrafficMode(data["mode"]), tuple(data["offers"]))


class BannerImageAsDict(Transcoding):
    """The image's bytes as base64 text (JSON has no bytes), the rest as read from them."""

    type = BannerImage
    name = "partners.banner_image"

    def encode(self, obj: BannerImage) -> dict[str, Any]:
        return {"format": obj.format.value, "width": obj.width, "height": obj.height,
                "data": base64.b64encode(obj.data).decode(), "filename": obj.filename}

    def decode(self, data: dict[str, Any]) -> BannerImage:
        return BannerImage(ImageFormat(data["format"]), data["width"], data["height"],
                           base64.b64decode(data["data"]), data.get("filename"))


def register_value_transcodings(transcoder: JSONTranscoder) -> None:
    """Teach an event-store transcoder the partners context's value objects."""
    for transcoding in (TermsAsDict(), BillingAsDict(), ConversionSecurityAsDict(), ContactAsDict(),
                        PartnerPostbackAsDict(), OfferEventAsDict(), CapAsDict(), TierAsDict(),
                        FraudSettingsAsDict(), RelationshipEventAsDict(), LandingPageAsDict(),
                        AllowDenyAsDict(), DayPartingAsDict(), TargetingAsDict(), RoutedOfferAsDict(),
                        FailTrafficAsDict(), BannerImageAsDict()):
        transcoder.register(transcoding)
