"""The partners' billing terms and profiles in PostgreSQL (``application/partner_terms.py``'s
``TermsTables``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from afflux_payouts.adapters.tables import PROFILES, TERMS
from afflux_payouts.domain.holds import Profile
from afflux_payouts.domain.terms import PartnerTerms
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import keys_param

UPDATED = tuple(name for name in TERMS.column_names if name != "partner_id")
PROFILE_UPDATED = tuple(name for name in PROFILES.column_names if name != "partner_id")


class TermsSql:
    def __init__(self, store: TrackedApplication) -> None:
        self.store = store

    def terms_of(self, partner_ids: Sequence[str]) -> dict[str, PartnerTerms]:
        rows = self.store.query(TERMS.select(self.store.schema), keys_param(partner_ids, ("partner_id",)))
        return {row["partner_id"]: terms_of_row(row) for row in rows}

    def writes(self, terms: Sequence[PartnerTerms], profiles: Sequence[Profile] = ()) -> list[Write]:
        schema = self.store.schema
        found = (TERMS.write(TERMS.upsert(schema, UPDATED), (asdict(t) for t in terms)),
                 PROFILES.write(PROFILES.upsert(schema, PROFILE_UPDATED), (asdict(p) for p in profiles)))
        return [write for write in found if write is not None]


def terms_of_row(row: Mapping[str, Any]) -> PartnerTerms:
    return PartnerTerms(**{name: row[name] for name in TERMS.column_names})


def profile_of_row(row: Mapping[str, Any]) -> Profile:
    return Profile(**{name: row[name] for name in PROFILES.column_names})
