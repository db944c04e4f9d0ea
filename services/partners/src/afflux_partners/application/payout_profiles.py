"""Recording and reading a partner's tax and payment profile.

The rules (``domain/payout_profile.py``) check what is given; this use case merges it
with what the profile held (unsealing it), seals the whole again and records it on
the profile's aggregate, whose relay publishes ``PartnerPayoutProfileSet`` with the
summary in clear and the details sealed. So neither the event store nor the log holds
a bank or tax number in clear, and a part set later (the payment method after the tax
details) keeps the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError

from afflux_contracts import utc_now
from afflux_partners.application.partners import Partners
from afflux_partners.domain.payout_profile import (
    PayoutProfile,
    check_payment_method,
    check_tax_profile,
    profile_id,
    summary_of,
)

TAX = "tax_profile"
METHOD = "payment_method"


class Sealer(Protocol):
    """Seals a profile's details for the event store and the log, and opens them again."""

    def seal(self, details: dict[str, Any]) -> str: ...

    def unseal(self, sealed: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Details:
    """A profile opened: its tax part and its payment method (None: none yet)."""

    tax: dict[str, Any]
    payment_method: dict[str, Any] | None


class PayoutProfiles:
    def __init__(self, store: Partners, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer

    def set_tax_profile(self, partner_id: str, fields: Mapping[str, Any]) -> PayoutProfile:
        """Replace the tax part (what is left out is cleared); the payment method stays."""
        tax = check_tax_profile(fields)
        return self._set(partner_id, TAX, lambda held: Details(tax, held.payment_method))

    def set_payment_method(self, partner_id: str, fields: Mapping[str, Any]) -> PayoutProfile:
        """Replace the payment method; the tax part stays."""
        method = check_payment_method(fields)
        return self._set(partner_id, METHOD, lambda held: Details(held.tax, method))

    def profile(self, partner_id: str) -> PayoutProfile | None:
        """The partner's profile (None: none recorded); an unknown partner is 404."""
        self.store.get_partner(partner_id)
        try:
            found: PayoutProfile = self.store.repository.get(profile_id(partner_id))
        except AggregateNotFoundError:
            return None
        return found

    def details(self, profile: PayoutProfile | None) -> Details:
        if profile is None:
            return Details({}, None)
        opened = self.sealer.unseal(profile.sealed)
        return Details(opened.get("tax") or {}, opened.get("payment_method"))

    def _set(self, partner_id: str, part: str, merge: Any) -> PayoutProfile:
        def record() -> PayoutProfile:
            held = self.profile(partner_id)
            after: Details = merge(self.details(held))
            summary = summary_of(after.tax, after.payment_method)
            sealed = self.sealer.seal({"tax": after.tax, "payment_method": after.payment_method})
            if held is None:
                held = PayoutProfile.record(partner_id, summary, sealed, (part,), utc_now())
            else:
                held.change(summary, sealed, (part,), utc_now())
            self.store.save(held)
            return held

        return self.store._retrying(record)
