"""What attribution's use cases need of its storage, named here and supplied by
``adapters/`` (PostgreSQL), so that no use case holds SQL.

Reads take many keys at once (a handler reads what its whole run needs in one query per
kind) and run inside the run's transaction, so they see what earlier segments of the
run wrote. Writes come back as ``Write``s in batch form, for the handler's ``Changes``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.program import Tally, TallyKey
from afflux_attribution.domain.rules import Click
from afflux_attribution.domain.terms import OfferTerms, RelationshipTerms
from afflux_attribution.domain.traffic import CountKey, PartnerKey, UniqueKey
from afflux_contracts import PartnerStatus
from afflux_plumbing.store import Write

IpKey = tuple[str, str, Any]
"""(offer_id, ip, UTC day): conversions from one IP on one offer on one day."""
Taken = tuple[str, str, str]
"""What a decision takes: (transaction_id, event, conversion_id) or (offer_id, order_id, conversion_id)."""
OutcomeKey = tuple[str, str, str, Any, str]
"""(offer_id, partner_id, kind (click/impression), UTC day, outcome (``earned`` or a reason))."""


@dataclass(frozen=True)
class Held:
    """A report read but not decided yet (parked): it answers ``pending`` with ``reason``.
    ``waits_for``: the tracking log's end offsets (partition → offset) its click may be below."""

    conversion_id: str
    event: str
    transaction_id: str | None
    offer_id: str | None
    converted_at: datetime
    reason: str
    message: str
    waits_for: Mapping[int, int] | None = None


@dataclass(frozen=True)
class IndexedClick:
    """A click as indexed, with what pricing it said (``None``: not on an offer that pays per
    click; ``earned``; or the reason it earned nothing)."""

    click: Click
    visitor: str | None
    pricing: str | None


class Terms(Protocol):
    """The terms views (what the partners log says), read by many keys."""

    def offer_terms(self, offer_ids: Collection[str]) -> dict[str, list[OfferTerms]]: ...

    def relationship_terms(self, pairs: Collection[PartnerKey]
                           ) -> dict[PartnerKey, list[RelationshipTerms]]: ...

    def partner_statuses(self, partner_ids: Collection[str]) -> dict[str, PartnerStatus]: ...

    def coupon_partners(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]: ...


class TermsWrites(Protocol):
    """The partners consumer's writes."""

    def offer_versions(self, versions: Sequence[OfferTerms]) -> list[Write]: ...

    def relationship_versions(self, versions: Sequence[RelationshipTerms]) -> list[Write]: ...

    def partner_statuses_written(self, rows: Sequence[tuple[str, PartnerStatus, datetime]]
                                 ) -> list[Write]: ...

    def coupons_written(self, held: Sequence[tuple[str, str, Sequence[str]]]) -> list[Write]: ...


class Tallies(Protocol):
    """The exact counts caps and tiers read: locked until the run commits, always under the
    event store's insert lock (taken first, so two instances never wait in a cycle)."""

    def lock_event_store(self) -> None: ...

    def locked_tallies(self, keys: Collection[TallyKey]) -> dict[TallyKey, Tally]: ...

    def tallies_added(self, added: Mapping[TallyKey, Tally]) -> list[Write]: ...


class Traffic(Terms, Tallies, Protocol):
    """The traffic handler's reads and writes."""

    def clicks(self, transaction_ids: Collection[str]) -> dict[str, Click]: ...

    def unique_taken(self, keys: Collection[UniqueKey]) -> set[UniqueKey]: ...

    def locked_counters(self, keys: Collection[CountKey]) -> dict[CountKey, int]: ...

    def locked_impressions(self, pairs: Collection[PartnerKey]) -> dict[PartnerKey, int]: ...

    def traffic_written(self, clicks: Sequence[IndexedClick], taken: Mapping[UniqueKey, str],
                        counted: Mapping[CountKey, int], impressions: Mapping[PartnerKey, int],
                        outcomes: Mapping[OutcomeKey, int]) -> list[Write]: ...


class Decisions(Terms, Tallies, Protocol):
    """The decision handler's reads and writes."""

    def decided(self, conversion_ids: Collection[str]) -> set[str]: ...

    def clicks(self, transaction_ids: Collection[str]) -> dict[str, Click]: ...

    def converted(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]: ...

    def credited(self, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]: ...

    def ip_counts(self, keys: Collection[IpKey]) -> dict[IpKey, int]: ...

    def held(self, conversion_ids: Collection[str]) -> dict[str, Held]: ...

    def hold(self, held: Sequence[Held]) -> None:
        """Note reports that are parked, committed at once on a connection of their own
        (their run commits nothing): they answer ``pending`` meanwhile."""

    def decisions_written(self, conversions: Sequence[Conversion], converted: Collection[Taken],
                          credited: Collection[Taken], ips: Mapping[IpKey, int]) -> list[Write]: ...


class Reviews(Protocol):
    """A review's writes: the conversion's row, and on appeal its dedupe rows and tallies."""

    def reviewed(self, conversion: Conversion) -> list[Write]: ...

    def appeal_written(self, conversion: Conversion, added: Mapping[TallyKey, Tally]) -> list[Write]: ...

    def tallies(self, keys: Collection[TallyKey]) -> dict[TallyKey, Tally]: ...
