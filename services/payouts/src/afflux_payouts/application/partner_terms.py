"""Folding ``afflux.partners.v1`` into what closes need, a run at a time: the billing
terms (one read of the terms the run's status changes touch, the run folded in log order
by ``domain/terms.py``, one upsert) and each partner's last tax and payment profile
(``domain/holds.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from afflux_contracts import PartnerPayoutProfileSet, PartnerStatusChanged
from afflux_payouts.domain.holds import Profile
from afflux_payouts.domain.terms import PartnerTerms, fold_terms
from afflux_plumbing.runs import Run
from afflux_plumbing.store import Changes, Write


class TermsTables(Protocol):
    """Where the partners' billing terms and profiles are kept."""

    def terms_of(self, partner_ids: Sequence[str]) -> dict[str, PartnerTerms]: ...

    def writes(self, terms: Sequence[PartnerTerms], profiles: Sequence[Profile] = ()) -> list[Write]: ...


def fold_partners(tables: TermsTables, run: Run) -> Changes:
    """The terms and profiles a run of partners records leaves."""
    changed = [r.payload.partner_id for r in run if isinstance(r.payload, PartnerStatusChanged)]
    known = tables.terms_of(list(dict.fromkeys(changed))) if changed else {}
    terms = fold_terms(known, ((record.payload, record.event_id) for record in run
                               if not isinstance(record.payload, PartnerPayoutProfileSet)))
    profiles = {record.payload.partner_id: profile_of(record.payload, record.event_id) for record in run
                if isinstance(record.payload, PartnerPayoutProfileSet)}
    return Changes(writes=tables.writes(list(terms.values()), list(profiles.values())))


def profile_of(profile: PartnerPayoutProfileSet, event_id: UUID) -> Profile:
    """What payouts keeps of a profile (the last of a partner replaces the ones before)."""
    return Profile(partner_id=profile.partner_id, complete=profile.complete,
                   missing=",".join(profile.missing), country=profile.country,
                   tax_form=profile.tax_form.value if profile.tax_form else None,
                   payment_method=profile.payment_method.value if profile.payment_method else None,
                   sealed=profile.sealed, event_id=event_id)
