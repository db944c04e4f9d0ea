"""Afflux contracts: the one import path for every event, the envelope and the topics."""

from afflux_contracts.attribution import (
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    RejectionReason,
    StatusChange,
)
from afflux_contracts.codec import DecodeError, decode, encode, headers
from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES, Event
from afflux_contracts.ids import derived_event_id, new_event_id
from afflux_contracts.partners import (
    Billing,
    BillingFrequency,
    ConversionSecurity,
    OfferCreated,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatus,
    PartnerStatusChanged,
    PayoutType,
    RelationshipSet,
    Terms,
    Visibility,
)
from afflux_contracts.postbacks import PartnerPostbackDelivered, PartnerPostbackFailed
from afflux_contracts.topics import ALL_TOPICS, ATTRIBUTION, PARTNERS, PAYOUTS, POSTBACKS, TRACKING, Topic
from afflux_contracts.tracking import (
    ClickMethod,
    ClickOutcome,
    ClickRecorded,
    ConversionReported,
    ImpressionRecorded,
)
from afflux_contracts.values import Money, minor_units, round_money, utc_now

__all__ = [
    "ALL_TOPICS",
    "ATTRIBUTION",
    "EVENT_TYPES",
    "PARTNERS",
    "PAYOUTS",
    "POSTBACKS",
    "TRACKING",
    "Billing",
    "BillingFrequency",
    "ClickMethod",
    "ClickOutcome",
    "ClickRecorded",
    "ConversionAttributed",
    "ConversionRejected",
    "ConversionReported",
    "ConversionSecurity",
    "ConversionStatus",
    "ConversionStatusChanged",
    "DecodeError",
    "Envelope",
    "Event",
    "ImpressionRecorded",
    "Money",
    "OfferCreated",
    "OfferStatus",
    "OfferStatusChanged",
    "PartnerCreated",
    "PartnerPostbackDelivered",
    "PartnerPostbackFailed",
    "PartnerStatus",
    "PartnerStatusChanged",
    "PayoutType",
    "RejectionReason",
    "RelationshipSet",
    "StatusChange",
    "Terms",
    "Topic",
    "Visibility",
    "decode",
    "derived_event_id",
    "encode",
    "headers",
    "minor_units",
    "new_event_id",
    "round_money",
    "utc_now",
]
