"""The partners' billing terms in PostgreSQL (``application/partner_terms.py``'s ``TermsTables``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from afflux_payouts.adapters.tables import TERMS
from afflux_payouts.domain.terms import PartnerTerms
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import keys_param

UPDATED = tuple(name for name in TERMS.column_names if name != "partner_id")


class TermsSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def terms_of(self, partner_ids: Sequence[str]) -> dict[str, PartnerTerms]:
        rows = self.store.query(TERMS.select(self.store.schema), keys_param(partner_ids, ("partner_id",)))
        return {row["partner_id"]: terms_of_row(row) for row in rows}

    def writes(self, terms: Sequence[PartnerTerms]) -> list[Write]:
        write = TERMS.write(TERMS.upsert(self.store.schema, UPDATED), (asdict(t) for t in terms))
        return [write] if write is not None else []


def terms_of_row(row: Mapping[str, Any]) -> PartnerTerms:
    return PartnerTerms(**{name: row[name] for name in TERMS.column_names})
