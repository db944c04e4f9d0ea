"""The tax gate: a payable statement of a partner whose tax and payment profile is
incomplete is held, with the reason, until the profile is complete.

Payouts does not own profiles: the partners service records them and publishes
``PartnerPayoutProfileSet`` with what a profile *is* in clear (complete or not, what is
missing, the kind of payment method) and its details sealed. Payouts keeps the last one
of each partner (``Profile``), decides a hold when it closes a period (``hold_reason``)
and releases what the profile now allows (``Statements.release_ready``). Holds and
releases are facts on payouts' own log, so a replay re-derives them without asking
what a profile was at some moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Profile:
    """A partner's tax and payment profile as payouts keeps it (``sealed``: the details,
    which only a holder of the profile keys opens)."""

    partner_id: str
    complete: bool
    missing: str
    """What keeps it incomplete, comma-separated (empty when complete)."""
    country: str | None
    tax_form: str | None
    payment_method: str | None
    sealed: str
    event_id: UUID


def hold_reason(profile: Profile | None) -> str | None:
    """Why a payable statement of the profile's partner is held (None: it is not)."""
    if profile is None:
        return "the partner has no tax and payment profile yet"
    if not profile.complete:
        missing = profile.missing.replace(",", ", ")
        return f"the partner's tax and payment profile is incomplete: missing {missing}"
    return None
