"""The partners context's vocabulary: statuses, visibility, commission terms, billing.

These are the domain's own types (plain Python), not the published contract's:
``application/published.py`` translates them, so the two can evolve apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PartnerStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"
    REJECTED = "rejected"


class OfferStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    PENDING = "pending"
    DELETED = "deleted"


class Visibility(StrEnum):
    PUBLIC = "public"
    REQUIRE_APPROVAL = "require_approval"
    PRIVATE = "private"


class PayoutType(StrEnum):
    CPA = "cpa"
    CPS = "cps"
    CPA_CPS = "cpa_cps"
    CPC = "cpc"
    CPM = "cpm"

    @property
    def takes_amount(self) -> bool:
        """A flat amount per conversion (CPA), per click (CPC) or per thousand impressions (CPM)."""
        return self in (PayoutType.CPA, PayoutType.CPC, PayoutType.CPM, PayoutType.CPA_CPS)

    @property
    def takes_percent(self) -> bool:
        """A share of the sale amount (CPS / RevShare)."""
        return self in (PayoutType.CPS, PayoutType.CPA_CPS)


class BillingFrequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    BIMONTHLY = "bimonthly"
    MONTHLY = "monthly"
    TWO_MONTHS = "two_months"
    QUARTERLY = "quarterly"
    MANUAL = "manual"


@dataclass(frozen=True)
class Terms:
    """How a result is priced, for the partner (payout) or the advertiser (revenue):
    a flat ``amount`` in the offer's currency, a ``percent`` of the sale, or both."""

    type: PayoutType
    amount: Decimal | None = None
    percent: Decimal | None = None


@dataclass(frozen=True)
class Billing:
    """When a partner is paid: its statement frequency, and the minimum balance below
    which it carries over to the next period."""

    currency: str
    frequency: BillingFrequency = BillingFrequency.MONTHLY
    minimum_payout: Decimal = Decimal(0)


@dataclass(frozen=True)
class ConversionSecurity:
    """Who may report a conversion on an offer: a server that knows the offer's postback
    token (unless ``token_required`` is off), from one of ``allowed_ips`` (IPs or CIDR
    networks; empty: anywhere); and browsers through the pixel, if ``pixel_allowed``."""

    token_required: bool = True
    allowed_ips: tuple[str, ...] = ()
    pixel_allowed: bool = False
