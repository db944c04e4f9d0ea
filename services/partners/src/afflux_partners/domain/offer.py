"""An offer: what partners promote, where its traffic lands, and what a result pays."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.rules import (
    RuleViolation,
    StatusChangeRefused,
    check_attribution_window,
    check_conversion_security,
    check_currency,
    check_http_url,
    check_name,
    check_terms,
)
from afflux_partners.domain.values import ConversionSecurity, OfferStatus, Terms, Visibility

INITIAL_STATUSES = frozenset({OfferStatus.ACTIVE, OfferStatus.PAUSED, OfferStatus.PENDING})


def check_offer_status_change(current: OfferStatus, requested: OfferStatus) -> None:
    """A deleted offer stays deleted: its history is kept for reports and payouts, but
    links to it must never come back to life. Launch a new offer instead."""
    if current is OfferStatus.DELETED:
        raise StatusChangeRefused("offer", current, requested, "a deleted offer cannot be restored")


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
OFFER_CREATED = "afflux_partners:Offer.Created"
OFFER_STATUS_CHANGED = "afflux_partners:Offer.StatusChanged"


class Offer(Aggregate):
    """Its id (as 32 hex characters) is the public ``offer_id``. Amounts in its payout and
    revenue terms are in the offer's ``currency``."""

    TOPIC = "afflux_partners:Offer"

    @classmethod
    def create(
        cls,
        name: str,
        destination_url: str,
        currency: str,
        payout: Terms,
        status: OfferStatus = OfferStatus.ACTIVE,
        visibility: Visibility = Visibility.REQUIRE_APPROVAL,
        revenue: Terms | None = None,
        attribution_window_days: int = 30,
        fallback_url: str | None = None,
        conversion_security: ConversionSecurity | None = None,
        postback_token: str | None = None,
    ) -> Offer:
        """A new offer, if what it is given passes the rules. ``postback_token`` is the
        secret an advertiser's server presents with each postback (the application draws
        it; the domain does no I/O)."""
        if status not in INITIAL_STATUSES:
            raise RuleViolation(
                "status", f"a new offer is active, paused or pending, not {status}", "invalid_status"
            )
        return cls(
            name=check_name(name),
            destination_url=check_http_url(destination_url, "destination_url"),
            status=status,
            visibility=visibility,
            currency=check_currency(currency),
            payout=check_terms(payout, "payout"),
            revenue=check_terms(revenue, "revenue") if revenue is not None else None,
            attribution_window_days=check_attribution_window(attribution_window_days),
            fallback_url=check_http_url(fallback_url, "fallback_url") if fallback_url is not None else None,
            conversion_security=check_conversion_security(conversion_security or ConversionSecurity()),
            postback_token=postback_token,
        )

    @event("Created", topic=OFFER_CREATED)
    def __init__(
        self,
        name: str,
        destination_url: str,
        status: OfferStatus,
        visibility: Visibility,
        currency: str,
        payout: Terms,
        revenue: Terms | None,
        attribution_window_days: int,
        fallback_url: str | None,
        conversion_security: ConversionSecurity | None = None,
        postback_token: str | None = None,
    ) -> None:
        self.name = name
        self.destination_url = destination_url
        self.status = OfferStatus(status)
        self.visibility = Visibility(visibility)
        self.currency = currency
        self.payout = payout
        self.revenue = revenue
        self.attribution_window_days = attribution_window_days
        self.fallback_url = fallback_url
        # Offers recorded before conversion security existed have neither: no check.
        self.conversion_security = conversion_security
        self.postback_token = postback_token

    @property
    def offer_id(self) -> str:
        return self.id.hex

    def change_status(self, status: OfferStatus) -> bool:
        """Move to ``status``; False (and no event) if the offer is already there."""
        if status == self.status:
            return False
        check_offer_status_change(self.status, status)
        self._status_changed(status)
        return True

    @event("StatusChanged", topic=OFFER_STATUS_CHANGED)
    def _status_changed(self, status: OfferStatus) -> None:
        self.status = OfferStatus(status)
