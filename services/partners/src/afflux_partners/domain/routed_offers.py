"""The rules of the offer lists that route clicks: an offer's fail traffic and a smart
link's offers. Checked when an admin sets them (a 422 naming the entry); that each
listed offer exists is the application's check (it needs the store), and tracking
decides per click which of them takes it (``afflux_tracking.domain.alternatives``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from afflux_partners.domain.destinations import MAX_WEIGHT
from afflux_partners.domain.rules import RuleViolation
from afflux_partners.domain.values import FailTraffic, FailTrafficMode, RoutedOffer

MAX_ROUTED_OFFERS = 50
MAX_PRIORITY = 100
_OFFER_ID = re.compile(r"[0-9a-f]{32}")


def check_routed_offers(offers: Iterable[RoutedOffer], field: str, *,
                        required: bool = False) -> tuple[RoutedOffer, ...]:
    """Offer ids as the API hands them out (32 hex), each once, weights 0 to
    ``MAX_WEIGHT``, priorities 1 to ``MAX_PRIORITY``. ``required`` (a smart link): one
    offer at least, and one of positive weight (else no visitor could ever go anywhere)."""
    given = tuple(offers)
    if required and not any(offer.weight > 0 for offer in given):
        raise RuleViolation(field, "must list at least one offer of positive weight", "too_few")
    if len(given) > MAX_ROUTED_OFFERS:
        raise RuleViolation(field, f"at most {MAX_ROUTED_OFFERS} offers", "too_many")
    seen: set[str] = set()
    for i, offer in enumerate(given):
        at = f"{field}.{i}"
        if _OFFER_ID.fullmatch(offer.offer_id) is None:
            raise RuleViolation(f"{at}.offer_id", f"{offer.offer_id!r} is not an offer id", "unknown_offer")
        if offer.offer_id in seen:
            raise RuleViolation(f"{at}.offer_id", f"offer {offer.offer_id!r} is listed twice",
                                "duplicate_offer")
        seen.add(offer.offer_id)
        if not 0 <= offer.weight <= MAX_WEIGHT:
            raise RuleViolation(f"{at}.weight", f"must be 0 to {MAX_WEIGHT}", "invalid_weight")
        if not 1 <= offer.priority <= MAX_PRIORITY:
            raise RuleViolation(f"{at}.priority", f"must be 1 to {MAX_PRIORITY}", "invalid_priority")
    return given


def check_fail_traffic(fail_traffic: FailTraffic, field: str = "fail_traffic") -> FailTraffic:
    """A mode and the offers it picks from; priorities are a smart link's (fail traffic
    follows the list's order), so they are refused here rather than silently ignored."""
    offers = check_routed_offers(fail_traffic.offers, f"{field}.offers")
    for i, offer in enumerate(offers):
        if offer.priority != 1:
            raise RuleViolation(f"{field}.offers.{i}.priority", "fail traffic follows the list's order "
                                "(mode priority) or the weights (mode weight): no priority",
                                "invalid_priority")
    return FailTraffic(FailTrafficMode(fail_traffic.mode), offers)


def check_not_itself(offer_id: str, fail_traffic: FailTraffic | None, field: str = "fail_traffic") -> None:
    """An offer's clicks cannot fail over to the offer that refused them."""
    for i, offer in enumerate(fail_traffic.offers if fail_traffic is not None else ()):
        if offer.offer_id == offer_id:
            raise RuleViolation(f"{field}.offers.{i}.offer_id", "an offer cannot send the clicks it "
                                "refuses to itself", "self_reference")
