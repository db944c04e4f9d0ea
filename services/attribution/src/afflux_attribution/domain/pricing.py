"""Pricing one conversion: what the partner earns (payout) and the advertiser books
(revenue), from the terms in force and the reported sale amount.

Money is Decimal, in the offer's currency, rounded once at the end with the one
rounding rule (half-up to the currency's minor unit), so CPA+CPS is rounded as a
whole, never part by part.
"""

from __future__ import annotations

from decimal import Decimal

from afflux_attribution.domain.terms import PricingTerms
from afflux_contracts import PayoutType, round_money

HUNDRED = Decimal(100)


class MissingSaleAmount(Exception):
    """Percentage terms were asked to price a conversion reported without a sale amount."""


def price(terms: PricingTerms, sale_amount: Decimal | None, currency: str) -> Decimal:
    """The amount ``terms`` give for one conversion of ``sale_amount``.

    CPC and CPM terms price clicks and impressions, not conversions: a conversion on
    such an offer earns 0.
    A part the terms leave unset adds nothing (the partners service never publishes
    CPA terms without an amount, nor CPS terms without a percent).
    """
    if terms.type in (PayoutType.CPC, PayoutType.CPM):
        return round_money(Decimal(0), currency)
    total = Decimal(0)
    if terms.type in (PayoutType.CPA, PayoutType.CPA_CPS):
        total += terms.amount or Decimal(0)
    if terms.type in (PayoutType.CPS, PayoutType.CPA_CPS):
        if sale_amount is None:
            raise MissingSaleAmount(f"{terms.type.value} terms need the sale amount")
        total += (terms.percent or Decimal(0)) / HUNDRED * sale_amount
    return round_money(total, currency)
