"""Where a click goes: the rules that turn a link's offer, partner and relationship into
an outcome and a target URL.

The offer's destination is reached only by a valid click. Every other outcome goes to
the offer's fallback ("fail traffic") URL, or nowhere when it has none, so a paused
offer or an unapproved partner can never leak traffic to the advertiser's landing page.
"""

from __future__ import annotations

from dataclasses import dataclass

from afflux_contracts import ClickOutcome, OfferStatus, PartnerStatus, Visibility
from afflux_tracking.domain.alternatives import Alternatives
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.destinations import NO_DESTINATIONS, Destinations
from afflux_tracking.domain.security import PostbackSecurity
from afflux_tracking.domain.targeting import Targeting


@dataclass(frozen=True)
class OfferRoute:
    """What the tracker knows of an offer: where its traffic may go, and whether it runs."""

    offer_id: str
    destination_url: str
    status: OfferStatus
    visibility: Visibility
    fallback_url: str | None = None
    security: PostbackSecurity | None = None
    """Who may report its conversions (``None``: an offer from before security existed)."""
    unique_click_hours: int = 24
    """A visitor's next click on the offer within this window is not unique."""
    destinations: Destinations = NO_DESTINATIONS
    """Its deep-link domains and landing pages (``domain/destinations.py``)."""
    targeting: Targeting | None = None
    """Which visitors it takes (``domain/targeting.py``); ``None``: everyone."""
    fail_traffic: Alternatives | None = None
    """The offers that take the clicks it cannot (``REROUTED``), before its fallback URL."""


@dataclass(frozen=True)
class SmartLinkRoute:
    """A smart link: its offers, tried in tiers (``domain/alternatives.py``), and where a
    visitor none of them takes goes (``None``: the first offer's fallback URL)."""

    smart_link_id: str
    offers: Alternatives
    fallback_url: str | None = None


@dataclass(frozen=True)
class PartnerRoute:
    partner_id: str
    status: PartnerStatus


@dataclass(frozen=True)
class LinkState:
    """A tracking link's facts as the routing view has them; ``None`` is "not known".

    ``approved`` is the relationship's approval, ``None`` when no relationship was set.
    """

    offer: OfferRoute | None
    partner: PartnerRoute | None
    approved: bool | None = None
    click_caps: tuple[ClickCap, ...] = ()
    """The hard click caps of the offer and of this partner's relationship."""
    targeting: Targeting | None = None
    """The relationship's targeting: narrows the offer's for this partner's clicks."""


@dataclass(frozen=True)
class UnknownLink:
    """The link names an offer or a partner the tracker has never heard of: not a click."""

    offer_known: bool
    partner_known: bool
    smart_link: bool = False
    """The link is a smart link (``offer_known``: the smart link is known)."""

    @property
    def message(self) -> str:
        if self.smart_link and not self.offer_known:
            return "this smart link does not exist"
        if self.smart_link and self.partner_known:
            return "this smart link's offers do not exist"
        missing = "offer" if not self.offer_known else "partner"
        return f"this tracking link's {missing} does not exist"


@dataclass(frozen=True)
class ClickDecision:
    """How a click on a known link ends: its outcome and the URL template it goes to
    (``None`` when the click is invalid and the offer has no fallback URL)."""

    outcome: ClickOutcome
    target: str | None
    reason: str | None = None
    """For ``targeting``: the rule the visitor failed."""

    @property
    def valid(self) -> bool:
        return self.outcome is ClickOutcome.VALID


_INACTIVE_OFFER = {OfferStatus.PENDING, OfferStatus.DELETED}


def click_outcome(offer: OfferRoute, partner: PartnerRoute, approved: bool | None) -> ClickOutcome:
    """The first rule a click breaks, in the order an advertiser reads them: the offer
    must run, the partner must be active, and the partner must be allowed to run it."""
    if offer.status is OfferStatus.PAUSED:
        return ClickOutcome.OFFER_PAUSED
    if offer.status in _INACTIVE_OFFER:
        return ClickOutcome.OFFER_INACTIVE
    if partner.status is not PartnerStatus.ACTIVE:
        return ClickOutcome.PARTNER_INACTIVE
    if not may_run(offer.visibility, approved):
        return ClickOutcome.PARTNER_NOT_APPROVED
    return ClickOutcome.VALID


def may_run(visibility: Visibility, approved: bool | None) -> bool:
    """Any active partner may run a public offer unless the advertiser explicitly said
    no; an approval-required or private offer needs an explicit approval."""
    if visibility is Visibility.PUBLIC:
        return approved is not False
    return approved is True


def decide_click(link: LinkState, traffic: ClickOutcome = ClickOutcome.VALID) -> ClickDecision | UnknownLink:
    """Route one click on ``link``; ``traffic`` is what the visitor's request itself says
    (a bot or a prefetch), checked after the link's own rules."""
    if link.offer is None or link.partner is None:
        return UnknownLink(offer_known=link.offer is not None, partner_known=link.partner is not None)
    outcome = click_outcome(link.offer, link.partner, link.approved)
    if outcome is ClickOutcome.VALID:
        outcome = traffic
    if outcome is ClickOutcome.VALID:
        return ClickDecision(outcome, link.offer.destination_url)
    return ClickDecision(outcome, link.offer.fallback_url or None)


REROUTED = frozenset({ClickOutcome.OFFER_PAUSED, ClickOutcome.OFFER_INACTIVE,
                      ClickOutcome.PARTNER_NOT_APPROVED, ClickOutcome.OVER_CAP, ClickOutcome.TARGETING})
"""The refusals an offer's fail traffic takes: the offer cannot take this visitor, another
may. An inactive partner, a bot or a prefetch is refused everywhere: never rerouted."""


REFUSALS: dict[ClickOutcome, str] = {
    ClickOutcome.OFFER_PAUSED: "the offer is paused",
    ClickOutcome.OFFER_INACTIVE: "the offer is not active",
    ClickOutcome.PARTNER_INACTIVE: "the partner is not active",
    ClickOutcome.PARTNER_NOT_APPROVED: "the partner is not approved to run this offer",
    ClickOutcome.BOT: "the visitor is an automated client",
    ClickOutcome.PREFETCH: "the request is a prefetch or a probe, not a visit",
    ClickOutcome.OVER_CAP: "the offer has reached its click cap for now",
    ClickOutcome.TARGETING: "the offer does not take this visitor",
}
"""Why an invalid click was not sent to the offer, in words a visitor can read."""
