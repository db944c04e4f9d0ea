"""Which offer a click is recorded on, and how it ends there: the offer's own rules after
the link's (targeting, then the hard caps), an offer's fail traffic (a click it cannot
take goes to a listed offer that takes it), a smart link's choice among its offers.

An offer "takes" a click when it runs, the partner may run it (approved, or public and
not refused), the visitor passes its targeting (and the partner's relationship's, which
narrows it) and it has room under its hard caps (then counted there): the same rules a
click on its own link obeys, so fail traffic and smart links never send a visitor where
that offer's own link could not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from afflux_contracts import ClickMethod, ClickOutcome
from afflux_tracking.domain.alternatives import choose
from afflux_tracking.domain.click_caps import ClickCounter
from afflux_tracking.domain.routing import ClickDecision, LinkState, SmartLinkRoute, decide_click
from afflux_tracking.domain.targeting import VisitorProfile, link_targeting_failure

if TYPE_CHECKING:
    from afflux_tracking.application.intake import Visit


class Links(Protocol):
    """What placing a click reads of the routing view (``RoutingView``, in memory)."""

    def link(self, offer_id: str, partner_id: str) -> LinkState: ...

    def smart_link(self, smart_link_id: str) -> SmartLinkRoute | None: ...

    def partner_known(self, partner_id: str) -> bool: ...


@dataclass(frozen=True)
class Placed:
    """The offer a click is recorded on, the link to it, and how the click ends there.
    ``refused``: the decision of the offer the link named, when its fail traffic sent the
    click here; ``smart_link_id``: the smart link that chose this offer."""

    offer_id: str
    link: LinkState
    decision: ClickDecision
    refused: ClickDecision | None = None
    smart_link_id: str | None = None


class Placements:
    """The offer-side rules of a click, over the routing view and this instance's caps."""

    def __init__(self, links: Links, click_caps: ClickCounter) -> None:
        self.links = links
        self.click_caps = click_caps

    @staticmethod
    def targeted(visit: Visit, link: LinkState, decision: ClickDecision, profile: VisitorProfile,
                 at: datetime) -> ClickDecision:
        """A valid click from a visitor the offer, or the partner's relationship with it,
        does not take is refused ``targeting``, naming the rule, and goes to the fallback
        (checked before the caps: it must not use up the offer's clicks)."""
        offer = link.offer
        if not decision.valid or offer is None or (offer.targeting is None and link.targeting is None):
            return decision
        failed = link_targeting_failure(offer.targeting, link.targeting, profile, visit.referer, at)
        if failed is None:
            return decision
        return ClickDecision(ClickOutcome.TARGETING, offer.fallback_url or None, failed)

    def capped(self, offer_id: str, partner_id: str, link: LinkState, decision: ClickDecision,
               at: datetime) -> ClickDecision:
        """A valid click over a hard click cap is refused ``over_cap`` and goes to the fallback."""
        if not decision.valid or not link.click_caps or link.offer is None:
            return decision
        if self.click_caps.admit(offer_id, partner_id, link.click_caps, at):
            return decision
        return ClickDecision(ClickOutcome.OVER_CAP, link.offer.fallback_url or None)

    def admitted(self, visit: Visit, offer_id: str, link: LinkState, decision: ClickDecision,
                 profile: VisitorProfile, at: datetime) -> ClickDecision:
        """The link's decision, then the offer's targeting, then its hard caps (a refused
        visitor uses up none of them)."""
        decision = self.targeted(visit, link, decision, profile, at)
        return self.capped(offer_id, visit.partner_id, link, decision, at)

    def _taken(self, visit: Visit, offer_id: str, profile: VisitorProfile, at: datetime) -> Placed | None:
        """The click placed on ``offer_id`` if that offer takes it: it runs, the partner may
        run it (approved, or public and not refused), the visitor passes its targeting and
        the relationship's, and it has room under its hard caps (then counted there)."""
        link = self.links.link(offer_id, visit.partner_id)
        decision = decide_click(link, ClickOutcome.VALID)
        if not isinstance(decision, ClickDecision) or not decision.valid:
            return None
        decision = self.admitted(visit, offer_id, link, decision, profile, at)
        return Placed(offer_id, link, decision) if decision.valid else None

    @staticmethod
    def reroutable(visit: Visit, link: LinkState) -> bool:
        """A person's redirect on an offer with fail traffic (a direct click's visitor is on
        the advertiser's page already, and a bot or prefetch goes nowhere else)."""
        return (visit.traffic is ClickOutcome.VALID and visit.method is ClickMethod.REDIRECT
                and link.offer is not None and link.offer.fail_traffic is not None)

    def rerouted(self, visit: Visit, refused: Placed, profile: VisitorProfile,
                 at: datetime) -> Placed | None:
        """The click on the first offer of the fail traffic that takes it, naming the
        refusal; only the listed offers are tried, never their own fail traffic: no loop."""
        offer = refused.link.offer
        assert offer is not None and offer.fail_traffic is not None

        def takes(offer_id: str) -> Placed | None:
            return None if offer_id == visit.offer_id else self._taken(visit, offer_id, profile, at)

        taken = choose(offer.fail_traffic, takes, random.random)
        return None if taken is None else Placed(taken.offer_id, taken.link, taken.decision, refused.decision)

    def smart(self, visit: Visit, smart_link_id: str, profile: VisitorProfile,
              at: datetime) -> Placed | None:
        """Where the view sends a smart link's click: the offer chosen, else its first offer
        with that offer's refusal; ``None`` when the view knows no such link, partner or
        first offer."""
        smart_link = self.links.smart_link(smart_link_id)
        if smart_link is None or not self.links.partner_known(visit.partner_id):
            return None
        taken = None
        if visit.traffic is ClickOutcome.VALID:
            taken = choose(smart_link.offers, lambda offer_id: self._taken(visit, offer_id, profile, at),
                           random.random)
        if taken is not None:
            return Placed(taken.offer_id, taken.link, taken.decision, smart_link_id=smart_link_id)
        return self._unmatched(visit, smart_link, profile, at)

    def _unmatched(self, visit: Visit, smart_link: SmartLinkRoute, profile: VisitorProfile,
                   at: datetime) -> Placed | None:
        """A smart link's click that no offer takes, recorded on its first offer with the
        first rule it breaks there (it passed them all: it is over that offer's cap)."""
        first = smart_link.offers.first
        link = self.links.link(first, visit.partner_id) if first is not None else None
        decision = decide_click(link, visit.traffic) if link is not None else None
        if first is None or link is None or link.offer is None or not isinstance(decision, ClickDecision):
            return None
        decision = self.targeted(visit, link, decision, profile, at)
        if decision.valid:
            decision = ClickDecision(ClickOutcome.OVER_CAP, link.offer.fallback_url or None)
        target = smart_link.fallback_url or decision.target
        return Placed(first, link, replace(decision, target=target), smart_link_id=smart_link.smart_link_id)
