"""The postbacks store: what the consumers apply, and what the worker records.

Three consumers apply to it. The partners consumer keeps each relationship's
postback, each partner's global one and each offer's silent events; the tracking
consumer keeps the subs of clicks that carry any; the attribution consumer makes a
delivery *owed* for each attributed conversion and each status change, in the
transaction that records its position, so a decision applied is a postback that
will be sent (or skipped, saying why), whatever crashes after. The worker then records every attempt and,
once a delivery ends, its outcome: a ``PostbackOutcome`` whose one event the outbox
relay publishes on ``afflux.postbacks.v1``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from psycopg import sql
from psycopg.types.json import Jsonb

from afflux_contracts import (
    ClickRecorded,
    ConversionAttributed,
    ConversionStatusChanged,
    Envelope,
    Event,
    OfferCreated,
    OfferUpdated,
    PartnerCreated,
    PartnerUpdated,
    RelationshipSet,
)
from afflux_plumbing.store import Changes, TrackedApplication, Write
from afflux_postbacks.adapters import schedule_sql
from afflux_postbacks.domain.macros import masked, uses_subs
from afflux_postbacks.domain.outcome import PostbackOutcome, delivery_id_for
from afflux_postbacks.domain.retries import AttemptResult, RetryPolicy, retryable
from afflux_postbacks.domain.routing import (
    ATTRIBUTED,
    STATUS_CHANGED,
    PostbackConfig,
    in_force,
    request,
    skip_reason,
)
from afflux_postbacks.domain.safety import Refused, checked_url

EARLIER_NEWS_WAIT = 1.0
"""Seconds before a status change waiting for its conversion's earlier news is looked at again."""


@dataclass(frozen=True)
class Delivery:
    """One row of the schedule / delivery log."""

    seq: int
    delivery_id: str
    conversion_id: str
    partner_id: str
    offer_id: str
    facts: dict[str, str | None]
    correlation_id: str | None
    status: str
    template: str | None
    url: str | None
    url_masked: str | None
    host: str | None
    method: str
    body: str | None
    attempts: int
    owed_at: datetime
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    updated_at: datetime

    @property
    def kind(self) -> str:
        return self.facts.get("kind") or ATTRIBUTED


@dataclass(frozen=True)
class Lookup:
    """What the views know of a batch of owed deliveries."""

    relationships: dict[tuple[str, str], PostbackConfig]
    partners: dict[str, PostbackConfig]
    offers: dict[str, frozenset[str]]
    """Offer id -> its events that do not fire partner postbacks."""
    subs: dict[str, dict[str, str | None]]


class Postbacks(TrackedApplication):
    """The schedule, the delivery log, and the views that fill a postback's macros."""

    name = "Postbacks"
    view_ddl: ClassVar = schedule_sql.VIEW_DDL

    # -- consuming -------------------------------------------------------------------

    def apply_partners_event(self, envelope: Envelope[Event]) -> Changes:
        payload = envelope.payload
        if isinstance(payload, RelationshipSet):
            return Changes(writes=[Write(schedule_sql.upsert_relationship(self.table("relationships")), (
                payload.offer_id, payload.partner_id, payload.postback_url, payload.postback_method.value,
                payload.postback_status_changes, envelope.occurred_at))])
        if isinstance(payload, PartnerCreated | PartnerUpdated):
            postback = payload.postback
            statement = schedule_sql.upsert_partner_postback(self.table("partner_postbacks"))
            return Changes(writes=[Write(statement, (
                payload.partner_id, postback.url if postback else None,
                postback.method.value if postback else "get", bool(postback and postback.status_changes),
                envelope.occurred_at))])
        if isinstance(payload, OfferCreated | OfferUpdated):
            silent = [event.name for event in payload.events if not event.fires_partner_postback]
            return Changes(writes=[Write(schedule_sql.upsert_offer(self.table("offers")),
                                         (payload.offer_id, silent, envelope.occurred_at))])
        return Changes()

    def apply_tracking_event(self, envelope: Envelope[Event]) -> Changes:
        payload = envelope.payload
        if isinstance(payload, ClickRecorded):
            subs = (payload.sub1, payload.sub2, payload.sub3, payload.sub4, payload.sub5)
            if any(subs):
                return Changes(writes=[Write(schedule_sql.insert_click_subs(self.table("click_subs")),
                                             (payload.transaction_id, *subs))])
        return Changes()

    def apply_attribution_event(self, envelope: Envelope[Event]) -> Changes:
        payload = envelope.payload
        if isinstance(payload, ConversionStatusChanged):
            return Changes(writes=[self._status_change(envelope, payload)])
        if not isinstance(payload, ConversionAttributed):
            return Changes()
        facts = {
            "kind": ATTRIBUTED,
            "transaction_id": payload.transaction_id,
            "conversion_id": payload.conversion_id,
            "event": payload.event,
            "payout": format(payload.payout.amount, "f"),
            "currency": payload.payout.currency,
            "status": payload.status.value,
            "offer_id": payload.offer_id,
            "partner_id": payload.partner_id,
        }
        write = Write(schedule_sql.insert_owed(self.table("deliveries")), (
            delivery_id_for(payload.conversion_id), payload.conversion_id, payload.partner_id,
            payload.offer_id, Jsonb(facts), envelope.correlation_id or payload.transaction_id))
        return Changes(writes=[write])

    def _status_change(self, envelope: Envelope[Event], payload: ConversionStatusChanged) -> Write:
        """A status change is news of its own (one delivery per change), sent only if the
        partner's postback asks for it (decided when it is resolved)."""
        facts = {
            "kind": STATUS_CHANGED,
            "conversion_id": payload.conversion_id,
            "payout": format(payload.payout.amount, "f"),
            "currency": payload.payout.currency,
            "status": payload.status.value,
            "previous_status": payload.previous_status.value,
            "offer_id": payload.offer_id,
            "partner_id": payload.partner_id,
        }
        return Write(schedule_sql.insert_status_change(self.table("deliveries")), {
            "delivery_id": delivery_id_for(payload.conversion_id, f"status:{envelope.event_id}"),
            "attributed_id": delivery_id_for(payload.conversion_id), "conversion_id": payload.conversion_id,
            "partner_id": payload.partner_id, "offer_id": payload.offer_id, "facts": Jsonb(facts),
            "correlation_id": envelope.correlation_id or payload.conversion_id})

    # -- the worker's reads and writes ---------------------------------------------------

    def lookup(self, owed: Sequence[Delivery]) -> Lookup:
        """The views' routing facts for ``owed``, a few queries for the whole batch."""
        offers = sorted({delivery.offer_id for delivery in owed})
        partners = sorted({delivery.partner_id for delivery in owed})
        wanted = {(delivery.offer_id, delivery.partner_id) for delivery in owed}
        relationships = {
            (row["offer_id"], row["partner_id"]): PostbackConfig(
                row["postback_url"] or "", row["postback_method"], row["postback_status_changes"])
            for row in self.query(schedule_sql.select_relationships(self.table("relationships")),
                                  (offers, partners))
            if (row["offer_id"], row["partner_id"]) in wanted}
        partner_postbacks = {
            row["partner_id"]: PostbackConfig(row["url"] or "", row["method"], row["status_changes"])
            for row in self.query(schedule_sql.select_partner_postbacks(self.table("partner_postbacks")),
                                  (partners,))}
        silent = {row["offer_id"]: frozenset(row["silent_events"])
                  for row in self.query(schedule_sql.select_offers(self.table("offers")), (offers,))}
        transactions = sorted({d.facts.get("transaction_id") or "" for d in owed} - {""})
        subs = {row["transaction_id"]: {name: row[name] for name in ("sub1", "sub2", "sub3", "sub4", "sub5")}
                for row in self.query(schedule_sql.select_click_subs(self.table("click_subs")),
                                      (transactions,))} if transactions else {}
        return Lookup(relationships, partner_postbacks, silent, subs)

    def claim_owed(self, limit: int, lease: float) -> list[Delivery]:
        """Up to ``limit`` owed deliveries, this caller's for ``lease`` seconds."""
        return self._write_returning(schedule_sql.claim_owed(self.table("deliveries")),
                                     {"lease": lease, "limit": limit})

    def claim_due(self, busy_hosts: list[str], per_host: int, limit: int, lease: float) -> list[Delivery]:
        """Due deliveries, at most ``per_host`` of one host, none of ``busy_hosts``, this
        caller's for ``lease`` seconds (then claimable again: its caller may have died)."""
        statement = schedule_sql.claim_due(self.table("deliveries"), self.table("paused_hosts"))
        return self._write_returning(statement, {"busy": busy_hosts, "per_host": per_host, "limit": limit,
                                                 "lease": lease})

    def resolve_owed(self, owed: Sequence[Delivery], *, final: bool) -> tuple[list[Delivery], int]:
        """Fill the request of every owed delivery the views know enough of, or skip it
        (no postback, a silent event, a status change not asked for), in one transaction.
        Unless ``final``, a delivery that would be skipped, whose offer is not in the
        views, or whose URL needs the subs of a click not in them, is left owed and
        returned: the caller catches up with the logs first (a postback set a moment ago
        counts). ``final``: what is not known
        after catching up is taken as absent. Returns (left owed, skipped)."""
        if not owed:
            return [], 0
        known = self.lookup(owed)
        unresolved, fills, skips = [], [], []
        waiting = self._behind_earlier_news(owed)
        for delivery in owed:
            if delivery.delivery_id in waiting:
                continue
            config = in_force(known.relationships.get((delivery.offer_id, delivery.partner_id)),
                              known.partners.get(delivery.partner_id))
            reason = skip_reason(delivery.facts, config, known.offers.get(delivery.offer_id, frozenset()))
            if not final and (reason is not None or delivery.offer_id not in known.offers):
                unresolved.append(delivery)  # the views may be behind: decide after catching up
                continue
            if reason is not None or config is None:
                skips.append({"delivery_id": delivery.delivery_id, "reason": reason})
                continue
            subs = known.subs.get(delivery.facts.get("transaction_id") or "")
            if subs is None and uses_subs(config.url) and not final:
                unresolved.append(delivery)
                continue
            fills.append(filled(delivery, config, subs))
        if fills or skips:
            with self.tracked_recorder.datastore.transaction(commit=True) as curs:
                if fills:
                    curs.executemany(schedule_sql.resolve(self.table("deliveries")), fills)
                if skips:
                    curs.executemany(schedule_sql.skip(self.table("deliveries")), skips)
        return unresolved, len(skips)

    def _behind_earlier_news(self, owed: Sequence[Delivery]) -> set[str]:
        """Status changes whose conversion has an earlier delivery not ended yet: they wait
        (owed, due again in a moment), so a partner hears of a conversion's news in the
        order it happened (its attribution before its reversal), however long the earlier
        one's retries take. Attributions come first and never wait."""
        changes = [delivery for delivery in owed if delivery.kind != ATTRIBUTED]
        if not changes:
            return set()
        rows = self.query(schedule_sql.select_unfinished(self.table("deliveries")),
                          (sorted({delivery.conversion_id for delivery in changes}),))
        earliest: dict[str, int] = {}
        for row in rows:
            earliest[row["conversion_id"]] = min(row["seq"], earliest.get(row["conversion_id"], row["seq"]))
        waiting = [delivery for delivery in changes if earliest.get(delivery.conversion_id, delivery.seq)
                   < delivery.seq]
        if waiting:
            self.defer_all(waiting, EARLIER_NEWS_WAIT)
        return {delivery.delivery_id for delivery in waiting}

    def defer_all(self, deliveries: Sequence[Delivery], delay: float) -> None:
        """Try these owed deliveries again in ``delay`` seconds (the log could not be read)."""
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.executemany(schedule_sql.defer(self.table("deliveries")),
                             [{"delivery_id": each.delivery_id, "delay": delay} for each in deliveries])

    def record_attempt(self, delivery: Delivery, result: AttemptResult, policy: RetryPolicy,
                       now: datetime) -> tuple[str, bool]:
        """``record_attempts`` of one call."""
        return self.record_attempts([(delivery, result)], policy, now)[0]

    def record_attempts(self, calls: Sequence[tuple[Delivery, AttemptResult]], policy: RetryPolicy,
                        now: datetime) -> list[tuple[str, bool]]:
        """Record calls that ended about now, in one transaction (one commit per call would
        cap deliveries at the database's commit rate); per call, its new status and whether
        its host was paused."""
        decided = [self._after_call(delivery, result, policy, now) for delivery, result in calls]
        writes = self._bulk([call_writes for _, _, call_writes, _ in decided])
        outcomes = [outcome for _, _, _, outcome in decided if outcome is not None]
        if outcomes:
            self.save(*outcomes, writes=writes)
        else:
            with self.tracked_recorder.datastore.transaction(commit=True) as curs:
                for write in writes:
                    curs.execute(write.statement, write.params)
        return [(status, pause) for status, pause, _, _ in decided]

    def _bulk(self, per_call: Sequence[list[Write]]) -> list[Write]:
        """The calls' attempt rows and schedule updates as one statement each (a statement
        per call would cost a round trip each), then any host pauses."""
        attempts = [writes[0].params for writes in per_call]
        updates = [writes[1].params for writes in per_call]
        pauses = [write for writes in per_call for write in writes[2:]]
        return [
            Write(schedule_sql.insert_attempts(self.table("attempts")), _columns(attempts, (
                "delivery_id", "attempt", "url", "status_code", "latency_ms", "error"))),
            Write(schedule_sql.after_attempts(self.table("deliveries")), _columns(updates, (
                "delivery_id", "status", "attempt", "next_attempt_at", "status_code", "error"))),
            *pauses,
        ]

    def _after_call(self, delivery: Delivery, result: AttemptResult, policy: RetryPolicy,
                    now: datetime) -> tuple[str, bool, list[Write], PostbackOutcome | None]:
        """Log one call and decide what follows: ``delivered``, ``pending`` (retry at the
        policy's time) or ``failed``; a final outcome is stored for the outbox in the same
        transaction. A delivery given up because its host kept failing until its retry time
        ran out pauses the host (nothing more is called there until an operator resumes
        it). Returns the delivery's new status and whether its host was paused."""
        attempt = delivery.attempts + 1
        next_at: datetime | None = delivery.next_attempt_at
        error = result.error
        pause = False
        if result.ok:
            status = "delivered"
        elif result.refused or not retryable(result.status_code):
            status = "failed"
        else:
            retry_at = policy.next_attempt(attempt, delivery.owed_at, now)
            status = "pending" if retry_at is not None else "failed"
            next_at = retry_at or delivery.next_attempt_at
            if retry_at is None:
                error = f"{result.error}; still failing after {attempt} attempts, given up"
                pause = bool(delivery.host)
        writes = [
            Write(schedule_sql.insert_attempt(self.table("attempts")), {
                "delivery_id": delivery.delivery_id, "attempt": attempt, "url": delivery.url_masked or "",
                "status_code": result.status_code,
                "latency_ms": Decimal(result.latency * 1000).quantize(Decimal("0.1")),
                "error": result.error}),
            Write(schedule_sql.after_attempt(self.table("deliveries")), {
                "delivery_id": delivery.delivery_id, "status": status, "attempt": attempt,
                "next_attempt_at": next_at, "status_code": result.status_code, "error": error}),
        ]
        if pause:
            writes.append(Write(schedule_sql.pause_host(self.table("paused_hosts")), {
                "host": delivery.host, "reason": f"conversion {delivery.conversion_id}: {error}"}))
        if status == "pending":
            return status, pause, writes, None
        outcome = PostbackOutcome.record(
            delivery_id=delivery.delivery_id, conversion_id=delivery.conversion_id,
            partner_id=delivery.partner_id, offer_id=delivery.offer_id, url=delivery.url_masked or "",
            attempts=attempt, status_code=result.status_code,
            error=None if status == "delivered" else (error or "failed"),
            correlation_id=delivery.correlation_id, kind=delivery.kind,
            conversion_status=delivery.facts.get("status"))
        return status, pause, writes, outcome

    def paused_count(self) -> int:
        rows = self.query(schedule_sql.count_paused(self.table("paused_hosts")))
        return int(rows[0]["paused"])

    def paused_hosts(self) -> list[dict[str, Any]]:
        """Paused hosts, with how many deliveries wait for each."""
        statement = schedule_sql.select_paused(self.table("paused_hosts"), self.table("deliveries"))
        return [dict(row) for row in self.query(statement)]

    def resume_host(self, host: str) -> int | None:
        """Unpause ``host`` and make its waiting deliveries due now; how many (None: it was
        not paused)."""
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(schedule_sql.resume_host(self.table("paused_hosts")), {"host": host})
            if curs.fetchone() is None:
                return None
            curs.execute(schedule_sql.due_now(self.table("deliveries")), {"host": host})
            resumed: int = curs.rowcount
        self._committed()
        return resumed

    # -- the delivery log ------------------------------------------------------------------

    def page(self, *, partner_id: str | None, status: str | None, after: int | None,
             limit: int) -> list[Delivery]:
        statement = schedule_sql.select_page(self.table("deliveries"), partner=partner_id is not None,
                                             status=status is not None, after=after is not None)
        rows = self.query(statement, {"partner_id": partner_id, "status": status, "after": after,
                                      "limit": limit})
        return [_delivery(row) for row in rows]

    def attempts(self, delivery_ids: list[str]) -> list[dict[str, Any]]:
        rows = self.query(schedule_sql.select_attempts(self.table("attempts")), (delivery_ids,))
        return [dict(row) for row in rows]

    def _write(self, statement: sql.Composed, params: dict[str, Any]) -> None:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, params)

    def _write_returning(self, statement: sql.Composed,
                         params: dict[str, Any]) -> list[Delivery]:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, params)
            return [_delivery(row) for row in curs.fetchall()]


def filled(delivery: Delivery, config: PostbackConfig, subs: dict[str, str | None] | None) -> dict[str, Any]:
    """The resolved columns of ``delivery``: its URL, masked URL, host, method and body. A
    URL that cannot be called keeps host "": it is called, refused and failed like any other."""
    sent = request(config, delivery.facts, subs)
    try:
        host = checked_url(sent.url)[1]
    except Refused:
        host = ""
    return {"delivery_id": delivery.delivery_id, "template": config.url, "url": sent.url,
            "url_masked": masked(sent.url), "host": host, "method": sent.method, "body": sent.body}


def _columns(rows: Sequence[Any], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Rows of named values as one list per name (the arrays an ``unnest`` reads)."""
    return {name: [row[name] for row in rows] for name in names}


def _delivery(row: Any) -> Delivery:
    facts = row["facts"]
    return Delivery(**{**row, "facts": json.loads(facts) if isinstance(facts, str) else dict(facts)})
