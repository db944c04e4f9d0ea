"""The advertiser's review of a decided conversion, and the appeal of one a rule rejected.

An appeal credits a conversion attribution rejected by a rule (fraud, cap, duplicate...)
and never priced: it is priced now with the terms in force at its conversion time (the
offer's and the partner's versions then; a tier by the partner's approved conversions
of that month as counted now), its trace names who approved it and why, and it counts
in the tallies like any attributed conversion. One that cannot be priced (its event is
not on the offer, a percentage without a sale amount, a sale in another currency) is
refused, saying why.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Protocol

from afflux_attribution.application.ports import Reviews, Terms
from afflux_attribution.domain.conversion import Appeal, Conversion, TransitionRefused
from afflux_attribution.domain.pricing import MissingSaleAmount
from afflux_attribution.domain.program import Tally, TallyKey, event_terms, period_keys, tally_keys
from afflux_attribution.domain.rules import Click, price_event
from afflux_attribution.domain.terms import offer_terms_in_force, relationship_terms_in_force
from afflux_contracts import DecisionTerms, RejectionReason, RuleCheck, RuleOutcome


class AppealStore(Terms, Reviews, Protocol):
    """What an appeal reads: the terms then, the month's tally, the click's subs."""

    def clicks(self, transaction_ids: Collection[str]) -> dict[str, Click]: ...


def appeal_of(conversion: Conversion, store: AppealStore, by: str | None, reason: str | None,
              note: str | None) -> tuple[Appeal, dict[TallyKey, Tally]]:
    """How ``conversion`` is credited on appeal, and its share of the tallies."""
    rejected = conversion.appealable()
    offer_id, partner_id, at = conversion.offer_id, conversion.partner_id, conversion.converted_at
    assert offer_id is not None and partner_id is not None

    def refuse(why: str) -> TransitionRefused:
        return TransitionRefused(conversion.conversion_id, conversion.status,
                                 f"conversion {conversion.conversion_id} cannot be approved on appeal: {why}")

    if rejected == RejectionReason.CURRENCY_MISMATCH.value:
        raise refuse(f"its sale was reported in {conversion.currency}, not the offer's currency")
    offer = offer_terms_in_force(store.offer_terms({offer_id}).get(offer_id, []), at)
    event = event_terms(offer, conversion.event) if offer is not None else None
    if offer is None or event is None:
        raise refuse(f"offer {offer_id} has no event {conversion.event!r} to price it by")
    relationship = relationship_terms_in_force(
        store.relationship_terms({(offer_id, partner_id)}).get((offer_id, partner_id), []), at)
    month = store.tallies({(offer_id, partner_id, period_keys(at)["month"])})
    try:
        priced = price_event(offer, event, relationship,
                             month.get((offer_id, partner_id, period_keys(at)["month"]), Tally()).approved,
                             conversion.sale_amount)
    except MissingSaleAmount as missing:
        raise refuse(f"it has no sale amount ({missing})") from None
    transaction = conversion.transaction_id
    click = store.clicks({transaction}).get(transaction) if transaction is not None else None
    checks = [RuleCheck(rule="appeal", outcome=RuleOutcome.PASSED,
                        detail=f"approved on appeal by {by or 'admin'} (rejected {rejected})"
                               + (f": {reason}" if reason else "")),
              RuleCheck(rule="pricing", outcome=RuleOutcome.PASSED,
                        detail=f"{priced.pricing.detail}: payout {priced.payout} {offer.currency}")]
    terms = DecisionTerms(offer_event_id=offer.event_id,
                          relationship_event_id=relationship.event_id if relationship else None,
                          event=conversion.event, payout_source=priced.pricing.source)
    appeal = Appeal(offer.currency, priced.payout, priced.revenue, terms.model_dump(mode="json"),
                    [check.model_dump(mode="json") for check in checks], click.subs if click else {},
                    by, reason, note)
    share = Tally(1, 1, priced.payout, priced.revenue or Decimal(0))
    return appeal, {key: share for key in tally_keys(offer_id, partner_id, at)}

