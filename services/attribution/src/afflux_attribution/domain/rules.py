"""The attribution decision: does a reported conversion earn its partner a commission,
and how much.

Read ``decide`` top to bottom: each rule a conversion can break is one early return
with the reason code an advertiser sees (Everflow's conversion error codes, by name),
in the order the checks are made; every rule checked is also written to the decision's
``trace`` (passed, failed, held or skipped, with a detail), so a decision explains
itself. A conversion that passes them all is priced, and is approved, or pending (held
for review) when a fraud check under ``review``, the pixel, a bound of the offer or its
event's approval holds it; ``reason`` then names the first rule that held it. Pure:
every fact it needs is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from afflux_attribution.domain.pricing import MissingSaleAmount, price
from afflux_attribution.domain.program import (
    Counts,
    Pricing,
    Tally,
    check_caps,
    check_fraud,
    choose_terms,
    event_terms,
)
from afflux_attribution.domain.terms import EventTerms, OfferTerms, RelationshipTerms
from afflux_contracts import (
    ClickOutcome,
    ConversionStatus,
    DecisionTerms,
    OfferStatus,
    PartnerStatus,
    RejectionReason,
    RuleCheck,
    RuleOutcome,
)


@dataclass(frozen=True)
class Click:
    """A click as the click index keeps it: enough to credit a conversion to it."""

    transaction_id: str
    offer_id: str
    partner_id: str
    clicked_at: datetime
    outcome: ClickOutcome
    sub1: str | None = None
    ip: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None

    @property
    def subs(self) -> dict[str, str | None]:
        return {"sub1": self.sub1, "sub2": self.sub2, "sub3": self.sub3, "sub4": self.sub4,
                "sub5": self.sub5}


@dataclass(frozen=True)
class ConversionReport:
    """An advertiser's report of a conversion, as the tracker received it.

    ``converted_at`` is when the tracker received the report: the time the
    attribution window and the terms in force are judged at. ``offer_id`` is the offer
    the tracker checked it against (for a coupon alone, the coupon's offer)."""

    conversion_id: str
    converted_at: datetime
    transaction_id: str | None = None
    coupon_code: str | None = None
    event: str = "conversion"
    sale_amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    ip: str | None = None
    offer_id: str | None = None
    method: str = "postback"
    """``postback`` (server to server, with the offer's token) or ``pixel`` (a browser)."""


@dataclass(frozen=True)
class Credit:
    """Who gets the credit: the click's partner, or the coupon's (``coupon_code`` set)."""

    offer_id: str
    partner_id: str
    click: Click | None
    coupon_code: str | None = None


@dataclass(frozen=True)
class Attributed:
    """Credited to ``credit``'s partner, priced in the offer's ``currency``; ``status``
    approved, or pending (held for approval or review)."""

    credit: Credit
    currency: str
    payout: Decimal
    revenue: Decimal | None
    status: ConversionStatus = ConversionStatus.APPROVED
    trace: tuple[RuleCheck, ...] = ()
    terms: DecisionTerms | None = None
    reason: str | None = None
    """Why it is pending: the first rule that held it (``None`` when approved)."""

    @property
    def click(self) -> Click | None:
        return self.credit.click


@dataclass(frozen=True)
class Rejected:
    """Earns nothing, for ``reason``; kept and reported, never dropped. ``credit`` is
    who would have been credited, when known; ``currency`` the sale amount's (as
    reported, else the offer's), when known."""

    reason: RejectionReason
    message: str
    credit: Credit | None = None
    currency: str | None = None
    trace: tuple[RuleCheck, ...] = ()
    terms: DecisionTerms | None = None

    @property
    def click(self) -> Click | None:
        return self.credit.click if self.credit else None


Decision = Attributed | Rejected
_Reject = Callable[[RejectionReason, str, str], Rejected]


class OfferTermsUnknown(Exception):
    """A conversion's click names an offer with no known terms: the partners log has not
    been read that far yet. Decide again once it has; never reject for it."""


@dataclass(frozen=True)
class Facts:
    """Everything known about the credited partner and offer when deciding."""

    offer: OfferTerms
    relationship: RelationshipTerms | None = None
    partner_status: PartnerStatus | None = None
    order_already_credited: bool = False
    event_already_converted: bool = False
    counts: Counts = field(default_factory=Counts)


def choose_credit(report: ConversionReport, click: Click | None, coupon_partner: str | None,
                  offer_id: str | None, precedence: str) -> Credit | None:
    """The click and the coupon each name a partner; when both do and they disagree,
    the offer's ``coupon_precedence`` decides (``click_first`` by default)."""
    by_coupon = (Credit(offer_id, coupon_partner, None, report.coupon_code)
                 if coupon_partner is not None and offer_id is not None else None)
    by_click = Credit(click.offer_id, click.partner_id, click) if click is not None else None
    if by_click is not None and by_coupon is not None and by_coupon.partner_id != by_click.partner_id:
        return by_coupon if precedence == "coupon_first" else by_click
    return by_click or by_coupon


class _Trace:
    """The rules checked so far, in order."""

    def __init__(self) -> None:
        self.checks: list[RuleCheck] = []

    def add(self, rule: str, outcome: RuleOutcome, detail: str | None = None) -> None:
        # Built from the rules' own values (a name, the enum, a string): validating each
        # of a decision's ~17 checks again cost a twentieth of a decision's CPU.
        self.checks.append(RuleCheck.model_construct(rule=rule, outcome=outcome, detail=detail))

    def passed(self, rule: str, detail: str | None = None) -> None:
        self.add(rule, RuleOutcome.PASSED, detail)

    def held(self, rule: str, detail: str) -> None:
        self.add(rule, RuleOutcome.HELD, detail)

    @property
    def held_by(self) -> str | None:
        """The reason code of the first rule that held the conversion, if any."""
        rule = next((check.rule for check in self.checks if check.outcome is RuleOutcome.HELD), None)
        return HELD_REASONS.get(rule, rule) if rule is not None else None


HELD_REASONS = {"approval": "requires_approval"}
"""A held conversion's ``reason`` is its rule's name, but for these."""


def decide(report: ConversionReport, credit: Credit | None, facts: Facts | None) -> Decision:
    """Decide ``report`` credited to ``credit`` (``None``: no click or coupon found)
    with ``facts`` (the terms in force for the credited offer and partner, and the counts)."""
    trace = _Trace()
    if credit is None:
        return _no_credit(report, trace)
    if facts is None:
        raise OfferTermsUnknown(f"offer {credit.offer_id} is not known yet")
    offer, terms = facts.offer, DecisionTerms(
        offer_event_id=facts.offer.event_id,
        relationship_event_id=facts.relationship.event_id if facts.relationship else None,
        event=report.event)
    currency = report.currency or offer.currency

    def reject(reason: RejectionReason, rule: str, message: str) -> Rejected:
        trace.add(rule, RuleOutcome.FAILED, message)
        return Rejected(reason, message, credit, currency, tuple(trace.checks), terms)

    via = f"coupon {credit.coupon_code}" if credit.coupon_code else f"click {report.transaction_id}"
    trace.passed("credit", f"{via} credits partner {credit.partner_id} on offer {credit.offer_id}")
    click = credit.click
    rejection = _click_rules(report, click, offer, trace, reject)
    if rejection is not None:
        return rejection
    if offer.status is not OfferStatus.ACTIVE:
        return reject(RejectionReason.INACTIVE_OFFER, "offer_active",
                      f"the offer was {offer.status.value} when the conversion came")
    trace.passed("offer_active")
    if report.currency is not None and report.currency != offer.currency:
        return reject(RejectionReason.CURRENCY_MISMATCH, "currency",
                      f"the sale was reported in {report.currency}; the offer pays in {offer.currency}")
    trace.passed("currency", offer.currency)
    event = event_terms(offer, report.event)
    if event is None:
        known = ", ".join(e.name for e in offer.events)
        return reject(RejectionReason.EVENT_NOT_ON_OFFER, "event",
                      f"the offer has no event {report.event!r} (it has {known})")
    trace.passed("event", report.event)
    if report.order_id is not None and facts.order_already_credited:
        return reject(RejectionReason.DUPLICATE, "duplicate_order",
                      f"order {report.order_id} was already credited on this offer")
    trace.add("duplicate_order", RuleOutcome.PASSED if report.order_id else RuleOutcome.SKIPPED,
              None if report.order_id else "no order_id")
    if click is not None and facts.event_already_converted and not event.allow_duplicates:
        return reject(RejectionReason.DUPLICATE, "duplicate_event",
                      f"transaction {click.transaction_id} already converted on event {event.name!r}, "
                      f"which does not allow duplicates")
    trace.add("duplicate_event", RuleOutcome.PASSED if click else RuleOutcome.SKIPPED,
              "duplicates allowed" if event.allow_duplicates else None)
    action = offer.fraud.action if offer.fraud else "reject"
    for rule, flag, detail in _screening(report, credit, facts):
        if flag is None:
            trace.passed(rule, detail)
        elif action == "review":
            trace.held(rule, f"{detail}: held for review")
        else:
            return reject(RejectionReason(flag), rule, detail)
    if report.method == "pixel":
        if offer.pixel_review:
            trace.held("pixel_review", "reported by the browser pixel (no secret): held for review")
        else:
            trace.passed("pixel_review", "the offer approves pixel conversions")
    try:
        approved = facts.counts.tally("partner", "month").approved
        priced = price_event(offer, event, facts.relationship, approved, report.sale_amount)
    except MissingSaleAmount as missing:
        return reject(RejectionReason.MISSING_SALE_AMOUNT, "pricing",
                      f"the conversion was reported without a sale amount: {missing}")
    terms = terms.model_copy(update={"payout_source": priced.pricing.source})
    payout, revenue = priced.payout, priced.revenue
    trace.passed("pricing", f"{priced.pricing.detail}: payout {payout} {offer.currency}")
    for bound in check_bounds(offer, event, report.sale_amount, payout):
        if not bound.over:
            trace.passed(bound.rule, bound.detail)
        elif offer.over_limit_action == "reject":
            return reject(bound.reason, bound.rule, bound.detail)
        else:
            trace.held(bound.rule, f"{bound.detail}: held for review")
    for cap in check_caps(offer, facts.relationship, facts.counts,
                          Tally(conversions=1, payout=payout, revenue=revenue or Decimal(0))):
        if cap.over and cap.cap.hard:
            return reject(RejectionReason.OVER_CAP, cap.rule, cap.detail)
        trace.add(cap.rule, RuleOutcome.FAILED if cap.over else RuleOutcome.PASSED, cap.detail)
    if event.requires_approval:
        trace.held("approval", f"event {event.name!r} needs the advertiser's approval")
    reason = trace.held_by
    status = ConversionStatus.PENDING if reason else ConversionStatus.APPROVED
    return Attributed(credit, offer.currency, payout, revenue, status, tuple(trace.checks), terms, reason)


@dataclass(frozen=True)
class Priced:
    """What one conversion of an event earns, and the terms chosen for it."""

    payout: Decimal
    revenue: Decimal | None
    pricing: Pricing


def price_event(offer: OfferTerms, event: EventTerms, relationship: RelationshipTerms | None,
                approved_this_month: int, sale_amount: Decimal | None) -> Priced:
    """Price one conversion of ``event`` (``MissingSaleAmount`` for percentage terms
    without a sale amount): at decision, and on appeal with the same terms in force."""
    pricing = choose_terms(offer, event, relationship, approved_this_month)
    payout = price(pricing.payout, sale_amount, offer.currency)
    revenue = price(pricing.revenue, sale_amount, offer.currency) if pricing.revenue else None
    return Priced(payout, revenue, pricing)


@dataclass(frozen=True)
class Bound:
    """One bound of a conversion (its sale amount, its payout) measured: ``over`` it?"""

    rule: str
    reason: RejectionReason
    over: bool
    detail: str


def check_bounds(offer: OfferTerms, event: EventTerms, sale_amount: Decimal | None,
                 payout: Decimal) -> list[Bound]:
    """The event's bounds, else the offer's (none set: none checked)."""
    found = []
    most_sale = event.max_sale_amount if event.max_sale_amount is not None else offer.max_sale_amount
    if most_sale is not None and sale_amount is not None:
        found.append(Bound("max_sale_amount", RejectionReason.OVER_MAX_SALE_AMOUNT, sale_amount > most_sale,
                           f"sale amount {sale_amount} (at most {most_sale})"))
    most_payout = event.max_payout if event.max_payout is not None else offer.max_payout
    if most_payout is not None:
        found.append(Bound("max_payout", RejectionReason.OVER_MAX_PAYOUT, payout > most_payout,
                           f"payout {payout} {offer.currency} (at most {most_payout})"))
    return found


def _no_credit(report: ConversionReport, trace: _Trace) -> Rejected:
    if report.transaction_id is not None:
        message = f"no click has transaction_id {report.transaction_id}"
        trace.add("credit", RuleOutcome.FAILED, message)
        return Rejected(RejectionReason.CLICK_NOT_FOUND, message, currency=report.currency,
                        trace=tuple(trace.checks))
    message = f"coupon code {report.coupon_code!r} is not assigned to a partner on the offer"
    trace.add("credit", RuleOutcome.FAILED, message)
    return Rejected(RejectionReason.COUPON_NOT_FOUND, message, currency=report.currency,
                    trace=tuple(trace.checks))


def _click_rules(report: ConversionReport, click: Click | None, offer: OfferTerms, trace: _Trace,
                 reject: _Reject) -> Rejected | None:
    """The click must be valid and the conversion inside its window (a coupon has no click)."""
    if click is None:
        trace.add("click_valid", RuleOutcome.SKIPPED, "credited by coupon")
        trace.add("attribution_window", RuleOutcome.SKIPPED, "credited by coupon")
        return None
    if click.outcome is not ClickOutcome.VALID:
        return reject(RejectionReason.CLICK_INVALID, "click_valid",
                      f"the click was not valid ({click.outcome.value})")
    trace.passed("click_valid")
    if not within_window(click.clicked_at, report.converted_at, offer.attribution_window_days):
        return reject(RejectionReason.OUTSIDE_WINDOW, "attribution_window",
                      window_miss(click.clicked_at, report.converted_at, offer.attribution_window_days))
    trace.passed("attribution_window", f"{offer.attribution_window_days} days")
    return None


def _screening(report: ConversionReport, credit: Credit,
               facts: Facts) -> list[tuple[str, str | None, str]]:
    """The partner's status and the offer's fraud checks: (rule, reason code if it failed, detail)."""
    status = facts.partner_status
    found: list[tuple[str, str | None, str]] = []
    if status is None:
        found.append(("partner_status", None, "partner not known to attribution"))
    elif status is PartnerStatus.SUSPENDED:
        found.append(("partner_status", RejectionReason.PARTNER_SUSPENDED.value,
                      f"partner {credit.partner_id} is suspended"))
    elif status is not PartnerStatus.ACTIVE:
        found.append(("partner_status", RejectionReason.PARTNER_INACTIVE.value,
                      f"partner {credit.partner_id} is {status.value}"))
    else:
        found.append(("partner_status", None, "active"))
    click = credit.click
    for finding in check_fraud(facts.offer.fraud, click.clicked_at if click else None, report.converted_at,
                               report.ip, click.ip if click else None, click.subs if click else {},
                               facts.counts.ip_today):
        found.append((finding.rule, finding.flag, finding.detail))
    return found


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
