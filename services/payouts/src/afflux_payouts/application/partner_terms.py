"""Folding ``afflux.partners.v1`` into the billing terms a close needs, a run at a time:
one read of the terms the run's status changes touch, the run folded in log order
(``domain/terms.py``), one upsert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from afflux_contracts import PartnerStatusChanged
from afflux_payouts.domain.terms import PartnerTerms, fold_terms
from afflux_plumbing.runs import Run
from afflux_plumbing.store import Changes, Write


class TermsTables(Protocol):
    """Where the partners' billing terms are kept."""

    def terms_of(self, partner_ids: Sequence[str]) -> dict[str, PartnerTerms]: ...

    def writes(self, terms: Sequence[PartnerTerms]) -> list[Write]: ...


def fold_partners(tables: TermsTables, run: Run) -> Changes:
    """The terms a run of partners records leaves."""
    changed = [r.payload.partner_id for r in run if isinstance(r.payload, PartnerStatusChanged)]
    known = tables.terms_of(list(dict.fromkeys(changed))) if changed else {}
    terms = fold_terms(known, ((record.payload, record.event_id) for record in run))
    return Changes(writes=tables.writes(list(terms.values())))
