"""The attribution decision: does a reported conversion earn its partner a commission,
and how much.

Read ``attribute`` top to bottom: each rule a conversion can break is one early
return with the reason code an advertiser sees (Everflow's conversion error codes, by
name), in the order the checks are made; a conversion that passes them all is priced.
Pure: every fact it needs is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from afflux_attribution.domain.pricing import MissingSaleAmount, price
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, RelationshipTerms
from afflux_contracts import ClickOutcome, OfferStatus, RejectionReason


@dataclass(frozen=True)
class Click:
    """A click as the click index keeps it: enough to credit a conversion to it."""

    transaction_id: str
    offer_id: str
    partner_id: str
    clicked_at: datetime
    outcome: ClickOutcome


@dataclass(frozen=True)
class ConversionReport:
    """An advertiser's report of a conversion, as the tracker received it.

    ``converted_at`` is when the tracker received the report: the time the
    attribution window and the terms in force are judged at."""

    conversion_id: str
    converted_at: datetime
    transaction_id: str | None = None
    coupon_code: str | None = None
    event: str = "conversion"
    sale_amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None


@dataclass(frozen=True)
class Attributed:
    """Credited to the click's partner, priced in the offer's ``currency``."""

    click: Click
    currency: str
    payout: Decimal
    revenue: Decimal | None


@dataclass(frozen=True)
class Rejected:
    """Earns nothing, for ``reason``; kept and reported, never dropped. ``click`` is the
    click when one was found; ``currency`` the sale amount's (as reported, else the
    offer's), when known."""

    reason: RejectionReason
    message: str
    click: Click | None = None
    currency: str | None = None


Decision = Attributed | Rejected


class OfferTermsUnknown(Exception):
    """A conversion's click names an offer with no known terms: the partners log has not
    been read that far yet. Decide again once it has; never reject for it."""


def attribute(
    report: ConversionReport,
    click: Click | None,
    offer: OfferTerms | None,
    relationship: RelationshipTerms | None,
    order_already_credited: bool,
) -> Decision:
    """Decide ``report``, last click wins: ``click`` is the click its transaction_id
    names (``None`` if the index has none), ``offer`` and ``relationship`` the terms in
    force at the conversion (for the click's offer and partner), and
    ``order_already_credited`` whether the report's order_id already earned on this
    offer."""
    if report.transaction_id is None:
        return Rejected(RejectionReason.COUPON_NOT_SUPPORTED,
                        "conversions credited by coupon code alone are not supported yet; "
                        "report the click's transaction_id", currency=report.currency)
    if click is None:
        return Rejected(RejectionReason.CLICK_NOT_FOUND,
                        f"no click has transaction_id {report.transaction_id}", currency=report.currency)
    if offer is None:
        raise OfferTermsUnknown(f"offer {click.offer_id} of click {click.transaction_id} is not known yet")
    currency = report.currency or offer.currency  # the sale's; the offer's when none was reported
    if click.outcome is not ClickOutcome.VALID:
        return Rejected(RejectionReason.CLICK_INVALID,
                        f"the click was not valid ({click.outcome.value})", click, currency)
    if not within_window(click.clicked_at, report.converted_at, offer.attribution_window_days):
        return Rejected(RejectionReason.OUTSIDE_WINDOW,
                        window_miss(click.clicked_at, report.converted_at, offer.attribution_window_days),
                        click, currency)
    if offer.status is not OfferStatus.ACTIVE:
        return Rejected(RejectionReason.INACTIVE_OFFER,
                        f"the offer was {offer.status.value} when the conversion came", click, currency)
    if report.currency is not None and report.currency != offer.currency:
        return Rejected(RejectionReason.CURRENCY_MISMATCH,
                        f"the sale was reported in {report.currency}; the offer pays in {offer.currency}",
                        click, currency)
    if report.order_id is not None and order_already_credited:
        return Rejected(RejectionReason.DUPLICATE,
                        f"order {report.order_id} was already credited on this offer", click, currency)
    payout_terms, revenue_terms = terms_for(offer, relationship)
    try:
        payout = price(payout_terms, report.sale_amount, offer.currency)
        revenue = price(revenue_terms, report.sale_amount, offer.currency) if revenue_terms else None
    except MissingSaleAmount as missing:
        return Rejected(RejectionReason.MISSING_SALE_AMOUNT,
                        f"the conversion was reported without a sale amount: {missing}",
                        click, currency)
    return Attributed(click, offer.currency, payout, revenue)


def within_window(clicked_at: datetime, converted_at: datetime, window_days: int) -> bool:
    """A conversion counts from the click up to ``window_days`` after it, both ends
    included; one reported before its click cannot have come from it."""
    return clicked_at <= converted_at <= clicked_at + timedelta(days=window_days)


def window_miss(clicked_at: datetime, converted_at: datetime, window_days: int) -> str:
    """Why a conversion falls outside its click's window, in words."""
    if converted_at < clicked_at:
        return f"the conversion ({converted_at.isoformat()}) came before its click ({clicked_at.isoformat()})"
    return (f"the conversion came {converted_at - clicked_at} after its click; the offer's "
            f"attribution window is {window_days} days")


def terms_for(
    offer: OfferTerms, relationship: RelationshipTerms | None
) -> tuple[PricingTerms, PricingTerms | None]:
    """Payout and revenue terms: the partner's custom terms win over the offer's
    default, each on its own (a custom payout leaves the offer's revenue in place)."""
    payout = offer.payout
    revenue = offer.revenue
    if relationship is not None:
        payout = relationship.payout or payout
        revenue = relationship.revenue or revenue
    return payout, revenue
