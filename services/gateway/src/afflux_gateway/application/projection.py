"""The gateway's projections: what each run of consumed records changes in its views.

Five consumers (one per topic, each in its own group) hand their runs to these
handlers (``@handles``: the plumbing claims the inbox, cuts a run into segments of one
handler each, and commits the run with its position). A handler reads what its
segment needs in one query per kind, folds the records in log order (the pure rules
of ``domain.conversions``), and returns its writes in batch form; a lone record is
a run of one through the same handler.

The views are ``ProjectionViews`` (the reads and writes named here, PostgreSQL in
``adapters.views``). Nothing here decides money: the partner's balance is payouts'
(asked over HTTP); conversions and statements are shown as their owners decided them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypeVar

from afflux_contracts import (
    ClickPriced,
    ClickRecorded,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    Event,
    ImpressionsPriced,
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerCreated,
    PartnerPayoutProfileSet,
    PartnerPostbackDelivered,
    PartnerPostbackFailed,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    StatementConverted,
    StatementHeld,
    StatementIssued,
    StatementPaid,
    StatementReleased,
)
from afflux_gateway.domain import conversions as rules
from afflux_gateway.domain.conversions import NO_SUBS, NO_VISITOR, Conversion, Kind, Move, Step
from afflux_plumbing.runs import RetryLater, Run, handles
from afflux_plumbing.store import Changes, Write

E = TypeVar("E", bound=Event)
Subs = tuple[str, ...]


class SeenClick(NamedTuple):
    """What the gateway kept of a valid click for the decisions that come after it."""

    subs: Subs
    visitor: tuple[str, str]
    """(country, device), ``""`` where unknown."""


UNSEEN = SeenClick(NO_SUBS, NO_VISITOR)
"""A click the gateway has not applied (yet): its decision counts without subs or visitor."""


class ProjectionViews(Protocol):
    """The reads and writes of the projections (each write in batch form; ``None``: nothing
    to write). Reads inside a run see the run's earlier writes."""

    def conversions_by_id(self, conversion_ids: Collection[str]) -> dict[str, Conversion]: ...
    def clicks_seen(self, transaction_ids: Collection[str]) -> dict[str, SeenClick]: ...
    def save_partners(self, partners: Sequence[PartnerCreated | PartnerUpdated]) -> Write | None: ...

    def save_payout_profiles(self, profiles: Sequence[PartnerPayoutProfileSet]) -> Write | None: ...
    def set_partner_status(self, changes: Sequence[PartnerStatusChanged]) -> Write | None: ...
    def add_keys(self, issued: Sequence[PartnerApiKeyIssued]) -> Write | None: ...
    def revoke_keys(self, revoked: Sequence[PartnerApiKeyRevoked]) -> Write | None: ...
    def save_offers(self, offers: Sequence[OfferCreated | OfferUpdated]) -> Write | None: ...
    def set_offer_status(self, changes: Sequence[OfferStatusChanged]) -> Write | None: ...
    def save_relationships(self, relationships: Sequence[RelationshipSet]) -> Write | None: ...
    def count_clicks(self, clicks: Sequence[ClickRecorded]) -> Write | None: ...
    def save_conversions(self, rows: Sequence[Conversion]) -> Write | None: ...
    def add_figures(self, moves: Sequence[Move]) -> Write | None: ...
    def add_statements(self, issued: Sequence[StatementIssued]) -> Write | None: ...
    def pay_statements(self, paid: Sequence[StatementPaid]) -> Write | None: ...
    def hold_statements(self, changes: Sequence[StatementHeld | StatementReleased]) -> Write | None: ...
    def convert_statements(self, converted: Sequence[StatementConverted]) -> Write | None: ...
    def save_delivered(self, delivered: Sequence[PartnerPostbackDelivered]) -> Write | None: ...
    def save_failed(self, failed: Sequence[PartnerPostbackFailed]) -> Write | None: ...


def payloads(run: Run) -> list[Any]:
    return [record.payload for record in run]


def last_per(run: Run, key: Callable[[Any], Hashable]) -> list[Any]:
    """The run's payloads, only the last of each key (what a row ends as), in log order."""
    last = {key(payload): payload for payload in payloads(run)}
    return list(last.values())


def first_per(run: Run, key: Callable[[Any], Hashable]) -> list[Any]:
    """The run's payloads, only the first of each key."""
    first: dict[Hashable, Any] = {}
    for payload in payloads(run):
        first.setdefault(key(payload), payload)
    return list(first.values())


def changes(*writes: Write | None) -> Changes:
    return Changes(writes=[write for write in writes if write is not None])


def subs_of(decision: ConversionAttributed | ClickPriced) -> Subs | None:
    """The click's subs the decision carries (None: it carries none, an older event)."""
    subs = (decision.sub1, decision.sub2, decision.sub3, decision.sub4, decision.sub5)
    return tuple(sub or "" for sub in subs) if any(subs) else None


class Projection:
    """The partner-facing views and the reporting figures, kept from the five topics."""

    def __init__(self, views: ProjectionViews) -> None:
        self.views = views

    # -- afflux.partners.v1 -------------------------------------------------------------

    @handles(PartnerCreated, PartnerUpdated)
    def on_partner_saved(self, run: Run) -> Changes:
        return changes(self.views.save_partners(last_per(run, lambda p: p.partner_id)))

    @handles(PartnerPayoutProfileSet)
    def on_payout_profile(self, run: Run) -> Changes:
        """The portal's tax and payment page shows whether the profile is complete and what
        is missing: the log's summary (the numbers stay sealed with partners)."""
        return changes(self.views.save_payout_profiles(last_per(run, lambda p: p.partner_id)))

    @handles(PartnerStatusChanged)
    def on_partner_status(self, run: Run) -> Changes:
        return changes(self.views.set_partner_status(last_per(run, lambda p: p.partner_id)))

    @handles(PartnerApiKeyIssued)
    def on_key_issued(self, run: Run) -> Changes:
        return changes(self.views.add_keys(first_per(run, lambda p: p.key_id)))

    @handles(PartnerApiKeyRevoked)
    def on_key_revoked(self, run: Run) -> Changes:
        return changes(self.views.revoke_keys(last_per(run, lambda p: (p.key_id, p.partner_id))))

    @handles(OfferCreated, OfferUpdated)
    def on_offer_saved(self, run: Run) -> Changes:
        return changes(self.views.save_offers(last_per(run, lambda p: p.offer_id)))

    @handles(OfferStatusChanged)
    def on_offer_status(self, run: Run) -> Changes:
        return changes(self.views.set_offer_status(last_per(run, lambda p: p.offer_id)))

    @handles(RelationshipSet)
    def on_relationship(self, run: Run) -> Changes:
        return changes(self.views.save_relationships(last_per(run, lambda p: (p.partner_id, p.offer_id))))

    # -- afflux.tracking.v1 -------------------------------------------------------------

    @handles(ClickRecorded, idempotent=(ClickRecorded,))
    def on_click(self, run: Run) -> Changes:
        """Valid clicks, counted once per transaction_id, in one statement for the run (the
        first of a transaction_id, as if each were applied alone)."""
        valid = [record for record in run if record.payload.valid]
        return changes(self.views.count_clicks(first_per(valid, lambda p: p.transaction_id)))

    # -- afflux.attribution.v1 ----------------------------------------------------------

    @handles(ConversionAttributed)
    def on_attributed(self, run: Run) -> Changes:
        decided: list[ConversionAttributed] = payloads(run)
        clicks = self.views.clicks_seen([p.transaction_id for p in decided])

        def shown(p: ConversionAttributed) -> Conversion:
            seen = clicks.get(p.transaction_id, UNSEEN)
            return Conversion(
                p.conversion_id,
                p.partner_id,
                p.offer_id,
                p.transaction_id,
                p.event,
                Kind.CONVERSION,
                p.status.value,
                p.reason,
                p.payout.amount,
                p.revenue.amount if p.revenue else None,
                p.payout.currency,
                p.converted_at,
                subs_of(p) or seen.subs,
                seen.visitor,
            )

        return self._fold(decided, lambda p: p.conversion_id, lambda now, p: rules.attributed(now, shown(p)))

    @handles(ConversionRejected)
    def on_rejected(self, run: Run) -> Changes:
        def shown(p: ConversionRejected) -> Conversion:
            return Conversion(
                p.conversion_id,
                p.partner_id,
                p.offer_id,
                p.transaction_id,
                None,
                Kind.CONVERSION,
                "rejected",
                p.reason.value,
                None,
                None,
                None,
                p.converted_at,
            )

        return self._fold(
            payloads(run), lambda p: p.conversion_id, lambda now, p: rules.rejected(now, shown(p))
        )

    @handles(ConversionStatusChanged)
    def on_reviewed(self, run: Run) -> Changes:
        def review(now: Conversion | None, p: ConversionStatusChanged) -> Step:
            if now is None:
                raise RetryLater(f"review of conversion {p.conversion_id}, not applied yet")
            return rules.reviewed(now, p.status, p.payout.amount, p.reason)

        return self._fold(payloads(run), lambda p: p.conversion_id, review)

    @handles(ClickPriced)
    def on_click_priced(self, run: Run) -> Changes:
        priced: list[ClickPriced] = payloads(run)
        clicks = self.views.clicks_seen([p.transaction_id for p in priced])

        def shown(p: ClickPriced) -> Conversion:
            seen = clicks.get(p.transaction_id, UNSEEN)
            return _traffic(
                f"click:{p.transaction_id}",
                p,
                Kind.CPC,
                p.clicked_at,
                SeenClick(subs_of(p) or seen.subs, seen.visitor),
                p.transaction_id,
            )

        return self._fold(
            priced, lambda p: f"click:{p.transaction_id}", lambda now, p: rules.priced(now, shown(p))
        )

    @handles(ImpressionsPriced)
    def on_impressions_priced(self, run: Run) -> Changes:
        def ref(p: ImpressionsPriced) -> str:
            return f"cpm:{p.offer_id}:{p.partner_id}:{p.block}"

        def shown(p: ImpressionsPriced) -> Conversion:
            return _traffic(ref(p), p, Kind.CPM, p.last_impressed_at, UNSEEN, None)

        return self._fold(payloads(run), ref, lambda now, p: rules.priced(now, shown(p)))

    def _fold(
        self, decided: Sequence[E], key: Callable[[E], str], step: Callable[[Conversion | None, E], Step]
    ) -> Changes:
        """Each record through its rule, in log order, over the conversions it names (read
        once for the segment); the rows that changed and the figures' moves, in batch form."""
        known = self.views.conversions_by_id({key(p) for p in decided})
        changed: dict[str, Conversion] = {}
        moves: list[Move] = []
        for payload in decided:
            now, moved = step(known.get(key(payload)), payload)
            if now is not None:
                known[key(payload)] = changed[key(payload)] = now
            if moved is not None:
                moves.append(moved)
        return changes(self.views.save_conversions(list(changed.values())), self.views.add_figures(moves))

    # -- afflux.payouts.v1 and afflux.postbacks.v1 --------------------------------------

    @handles(StatementIssued)
    def on_statement_issued(self, run: Run) -> Changes:
        return changes(self.views.add_statements(first_per(run, lambda p: p.statement_id)))

    @handles(StatementHeld, StatementReleased)
    def on_statement_held(self, run: Run) -> Changes:
        """The tax gate: the partner sees its statement held, and why, until it is released."""
        return changes(self.views.hold_statements(last_per(run, lambda p: p.statement_id)))

    @handles(StatementConverted)
    def on_statement_converted(self, run: Run) -> Changes:
        """A statement paid in the partner's billing currency: the partner sees that amount."""
        return changes(self.views.convert_statements(first_per(run, lambda p: p.statement_id)))

    @handles(StatementPaid)
    def on_statement_paid(self, run: Run) -> Changes:
        return changes(self.views.pay_statements(last_per(run, lambda p: (p.statement_id, p.partner_id))))

    @handles(PartnerPostbackDelivered)
    def on_postback_delivered(self, run: Run) -> Changes:
        return changes(self.views.save_delivered(last_per(run, lambda p: p.delivery_id)))

    @handles(PartnerPostbackFailed)
    def on_postback_failed(self, run: Run) -> Changes:
        return changes(self.views.save_failed(last_per(run, lambda p: p.delivery_id)))


def _traffic(
    ref: str, p: ClickPriced | ImpressionsPriced, kind: Kind, at: Any, click: SeenClick,
    transaction_id: str | None,
) -> Conversion:
    revenue = p.revenue.amount if p.revenue else Decimal(0)
    return Conversion(
        ref,
        p.partner_id,
        p.offer_id,
        transaction_id,
        None,
        kind,
        "approved",
        None,
        p.payout.amount,
        revenue,
        p.payout.currency,
        at,
        click.subs,
        click.visitor,
    )
