"""What the logs tell postbacks: the routing views, and the deliveries owed.

The partners log keeps each relationship's postback, each partner's global one and
each offer's silent events (the newest state of each wins, whatever order the states
come in). The attribution log makes a delivery *owed* for each attributed conversion
and each change of its status, in the transaction that records its position, so a
decision applied is a postback that will be sent (or skipped, saying why), whatever
crashes after. The click's subs come with the decision (``ConversionAttributed.sub1``..
``sub5``): postbacks reads no click. A decision published before the decisions carried
them has none: its sub macros are filled empty.

Each handler takes a run of records (``afflux_plumbing.runs``) and returns its writes in
batch form; a status change reads the facts of its conversion's attributed delivery,
which an earlier segment of the same run may just have written.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from afflux_contracts import (
    ConversionAttributed,
    ConversionStatusChanged,
    OfferCreated,
    OfferUpdated,
    PartnerCreated,
    PartnerUpdated,
    RelationshipSet,
)
from afflux_plumbing.runs import Record, Run, handles
from afflux_plumbing.store import Changes, Write
from afflux_postbacks.domain.macros import SUB_MACROS
from afflux_postbacks.domain.outcome import delivery_id_for
from afflux_postbacks.domain.routing import ATTRIBUTED, STATUS_CHANGED

Row = Mapping[str, Any]


class NewsStore(Protocol):
    """The writes (and the one read) the logs' news makes."""

    def set_relationships(self, rows: Sequence[Row]) -> Sequence[Write]: ...

    def set_partner_postbacks(self, rows: Sequence[Row]) -> Sequence[Write]: ...

    def set_offers(self, rows: Sequence[Row]) -> Sequence[Write]: ...

    def owe(self, rows: Sequence[Row]) -> Sequence[Write]:
        """Deliveries owed from now; one owed before (a redelivery) is left as it is."""
        ...

    def facts_of(self, delivery_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The facts of these deliveries, those that exist."""
        ...


class News:
    """The run handlers of the partners and attribution logs."""

    def __init__(self, store: NewsStore) -> None:
        self.store = store

    @handles(RelationshipSet)
    def on_relationships(self, run: Run) -> Changes:
        rows = newest(((r.payload.offer_id, r.payload.partner_id), {
            "offer_id": r.payload.offer_id, "partner_id": r.payload.partner_id,
            "postback_url": r.payload.postback_url, "postback_method": r.payload.postback_method.value,
            "postback_status_changes": r.payload.postback_status_changes, "set_at": r.occurred_at,
        }) for r in run)
        return Changes(writes=self.store.set_relationships(rows))

    @handles(PartnerCreated, PartnerUpdated)
    def on_partners(self, run: Run) -> Changes:
        rows = newest((r.payload.partner_id, _partner_postback(r)) for r in run)
        return Changes(writes=self.store.set_partner_postbacks(rows))

    @handles(OfferCreated, OfferUpdated)
    def on_offers(self, run: Run) -> Changes:
        rows = newest((r.payload.offer_id, {
            "offer_id": r.payload.offer_id, "set_at": r.occurred_at,
            "silent_events": [event.name for event in r.payload.events if not event.fires_partner_postback],
        }) for r in run)
        return Changes(writes=self.store.set_offers(rows))

    @handles(ConversionAttributed)
    def on_attributions(self, run: Run) -> Changes:
        return Changes(writes=self.store.owe([_attributed(record) for record in run]))

    @handles(ConversionStatusChanged)
    def on_status_changes(self, run: Run) -> Changes:
        """A status change is news of its own (one delivery per change), sent only if the
        partner's postback asks for it (decided when it is resolved). It carries the facts
        of its conversion's attribution (transaction, event, subs) under its own."""
        attributed = self.store.facts_of(sorted({delivery_id_for(r.payload.conversion_id) for r in run}))
        return Changes(writes=self.store.owe([
            _status_change(r, attributed.get(delivery_id_for(r.payload.conversion_id), {})) for r in run]))


def newest(keyed: Iterable[tuple[Hashable, Row]]) -> list[Row]:
    """One row per key, the newest by ``set_at`` (of equals, the later in the log): a
    run's states of one thing, folded as they would have been one after another."""
    kept: dict[Hashable, Row] = {}
    for key, row in keyed:
        if key not in kept or row["set_at"] >= kept[key]["set_at"]:
            kept[key] = row
    return list(kept.values())


def _partner_postback(record: Record[PartnerCreated | PartnerUpdated]) -> Row:
    postback = record.payload.postback
    return {"partner_id": record.payload.partner_id, "url": postback.url if postback else None,
            "method": postback.method.value if postback else "get",
            "status_changes": bool(postback and postback.status_changes), "set_at": record.occurred_at}


def _attributed(record: Record[ConversionAttributed]) -> Row:
    payload = record.payload
    facts = {
        "kind": ATTRIBUTED, "transaction_id": payload.transaction_id, "conversion_id": payload.conversion_id,
        "event": payload.event, "payout": format(payload.payout.amount, "f"),
        "currency": payload.payout.currency, "status": payload.status.value, "offer_id": payload.offer_id,
        "partner_id": payload.partner_id,
        **{name: getattr(payload, name) for name in SUB_MACROS},
    }
    return _owed(record, delivery_id_for(payload.conversion_id), facts,
                 record.envelope.correlation_id or payload.transaction_id)


def _status_change(record: Record[ConversionStatusChanged], attributed: Mapping[str, Any]) -> Row:
    payload = record.payload
    facts = {
        **attributed, "kind": STATUS_CHANGED, "conversion_id": payload.conversion_id,
        "payout": format(payload.payout.amount, "f"), "currency": payload.payout.currency,
        "status": payload.status.value, "previous_status": payload.previous_status.value,
        "offer_id": payload.offer_id, "partner_id": payload.partner_id,
    }
    return _owed(record, delivery_id_for(payload.conversion_id, f"status:{record.event_id}"), facts,
                 record.envelope.correlation_id or payload.conversion_id)


def _owed(record: Record[Any], delivery_id: str, facts: dict[str, Any], correlation_id: str) -> Row:
    payload = record.payload
    return {"delivery_id": delivery_id, "conversion_id": payload.conversion_id,
            "partner_id": payload.partner_id, "offer_id": payload.offer_id, "facts": facts,
            "correlation_id": correlation_id, "status": "owed"}
