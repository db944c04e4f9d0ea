"""A partner's billing terms as payouts keeps them, folded from ``afflux.partners.v1``.

Payouts does not own partners: it keeps only what closing a period needs (the
billing currency, frequency and minimum payout) and the partner's name and status
to show on statements. A PartnerCreated or PartnerUpdated carries the partner's
whole state, so it replaces the terms; a PartnerStatusChanged changes the status of
terms already known (a partner payouts never heard of gains none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from uuid import UUID

from afflux_contracts import BillingConversion, Event, PartnerCreated, PartnerStatusChanged, PartnerUpdated
from afflux_payouts.domain.statements import Terms


@dataclass(frozen=True)
class PartnerTerms:
    partner_id: str
    name: str
    status: str
    billing_currency: str | None
    frequency: str | None
    minimum_payout: Decimal | None
    method: str | None
    event_id: UUID
    """The PartnerCreated/Updated they come from."""
    conversion: str = BillingConversion.NONE.value
    """Paid in ``billing_currency`` at recorded rates (``earned_day``, ``period_end``), or in
    each currency earned (``none``)."""

    @property
    def paid_in(self) -> str | None:
        """The currency every statement is paid in (None: each in its own)."""
        return self.billing_currency if self.conversion != BillingConversion.NONE.value else None

    @property
    def for_close(self) -> Terms:
        return Terms(currency=self.billing_currency, minimum_payout=self.minimum_payout or Decimal(0),
                     frequency=self.frequency)


def terms_of(partner: PartnerCreated | PartnerUpdated, event_id: UUID) -> PartnerTerms:
    billing = partner.billing
    return PartnerTerms(
        partner_id=partner.partner_id, name=partner.name, status=partner.status.value,
        billing_currency=billing.currency if billing else None,
        frequency=billing.frequency.value if billing else None,
        minimum_payout=billing.minimum_payout if billing else None,
        method=billing.method if billing else None, event_id=event_id,
        conversion=billing.conversion.value if billing else BillingConversion.NONE.value)


def fold_terms(known: Mapping[str, PartnerTerms],
               records: Iterable[tuple[Event, UUID]]) -> dict[str, PartnerTerms]:
    """The terms ``records`` (payload, event_id) leave, in order, over ``known``: those
    of every partner they changed."""
    current = dict(known)
    changed: dict[str, PartnerTerms] = {}
    for payload, event_id in records:
        if isinstance(payload, PartnerStatusChanged):
            before = current.get(payload.partner_id)
            if before is None:
                continue
            after = replace(before, status=payload.status.value)
        else:
            assert isinstance(payload, PartnerCreated | PartnerUpdated)
            after = terms_of(payload, event_id)
        current[after.partner_id] = changed[after.partner_id] = after
    return changed
