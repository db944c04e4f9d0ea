"""The schedule's use cases: owed deliveries resolved into requests, calls recorded.

*Resolving* fills an owed delivery's request from the postback in force (the
relationship's, else the partner's global one) and its news's facts, or skips it
saying why. A status change waits while its conversion's earlier news has not ended,
so a partner hears of an attribution before its reversal however long the first
one's retries take. *Recording* logs calls that ended about now, all in one
transaction (one commit per call would cap deliveries at the database's commit
rate); a delivery that ends stores its ``PostbackOutcome`` for the outbox in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from afflux_postbacks.domain.macros import masked
from afflux_postbacks.domain.outcome import PostbackOutcome
from afflux_postbacks.domain.retries import AttemptResult, RetryPolicy
from afflux_postbacks.domain.routing import ATTRIBUTED, PostbackConfig, in_force, request, skip_reason
from afflux_postbacks.domain.safety import Refused, checked_url

EARLIER_NEWS_WAIT = 1.0
"""Seconds before a status change waiting for its conversion's earlier news is looked at again."""

Row = Mapping[str, Any]


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
class Routing:
    """What the views know of a batch of owed deliveries."""

    relationships: dict[tuple[str, str], PostbackConfig]
    partners: dict[str, PostbackConfig]
    offers: dict[str, frozenset[str]]
    """Offer id -> its events that do not fire partner postbacks."""


class Schedule(Protocol):
    """The reads and writes of the delivery worker."""

    def claim_owed(self, limit: int, lease: float) -> list[Delivery]:
        """Up to ``limit`` due owed deliveries, this caller's for ``lease`` seconds."""
        ...

    def routing(self, owed: Sequence[Delivery]) -> Routing: ...

    def unfinished(self, conversion_ids: Sequence[str]) -> dict[str, int]:
        """Per conversion, the earliest ``seq`` of its deliveries not ended (owed, pending)."""
        ...

    def resolve(self, rows: Sequence[Row]) -> None:
        """Owed deliveries get their request (``pending``) or are ``skipped``."""
        ...

    def defer(self, delivery_ids: Sequence[str], delay: float) -> None: ...

    def claim_due(self, busy_hosts: Sequence[str], per_host: int, limit: int, lease: float) -> list[Delivery]:
        """Due deliveries, at most ``per_host`` of one host, none of ``busy_hosts``, this
        caller's for ``lease`` seconds (then claimable again: its caller may have died)."""
        ...

    def record(self, attempts: Sequence[Row], schedule: Sequence[Row], pauses: Sequence[Row],
               outcomes: Sequence[PostbackOutcome.Created]) -> None:
        """Attempts, schedule changes, host pauses and outcomes, in one transaction."""
        ...

    def paused_count(self) -> int: ...


class DeliveryLog(Protocol):
    """What operators read and do through the admin API."""

    def page(self, *, partner_id: str | None, status: str | None, after: int | None,
             limit: int) -> list[Delivery]: ...

    def attempts(self, delivery_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def paused_hosts(self) -> list[dict[str, Any]]:
        """Paused hosts, with how many deliveries wait for each."""
        ...

    def resume_host(self, host: str) -> int | None:
        """Unpause ``host`` and make its waiting deliveries due now; how many (None: it was
        not paused)."""
        ...


def resolve_owed(schedule: Schedule, owed: Sequence[Delivery], *, final: bool) -> tuple[list[Delivery], int]:
    """Fill the request of every owed delivery the views know enough of, or skip it (no
    postback, a silent event, a status change not asked for), in one transaction. Unless
    ``final``, a delivery that would be skipped, or whose offer is not in the views, is
    left owed and returned: the caller catches up with the partners log first (a
    postback set a moment ago counts). ``final``: what is not known after catching up
    is taken as absent. Returns (left owed, skipped)."""
    if not owed:
        return [], 0
    known = schedule.routing(owed)
    waiting = _behind_earlier_news(schedule, owed)
    unresolved: list[Delivery] = []
    rows: list[Row] = []
    skipped = 0
    for delivery in owed:
        if delivery.delivery_id in waiting:
            continue
        config = in_force(known.relationships.get((delivery.offer_id, delivery.partner_id)),
                          known.partners.get(delivery.partner_id))
        reason = skip_reason(delivery.facts, config, known.offers.get(delivery.offer_id, frozenset()))
        if not final and (reason is not None or delivery.offer_id not in known.offers):
            unresolved.append(delivery)  # the views may be behind: decide after catching up
        elif reason is not None or config is None:
            rows.append({"delivery_id": delivery.delivery_id, "status": "skipped", "method": delivery.method,
                         "last_error": reason})
            skipped += 1
        else:
            rows.append(filled(delivery, config))
    if rows:
        schedule.resolve(rows)
    return unresolved, skipped


def filled(delivery: Delivery, config: PostbackConfig) -> Row:
    """The request of ``delivery``: its URL, masked URL, host, method and body. A URL that
    cannot be called keeps host "": it is called, refused and failed like any other."""
    sent = request(config, delivery.facts)
    try:
        host = checked_url(sent.url)[1]
    except Refused:
        host = ""
    return {"delivery_id": delivery.delivery_id, "status": "pending", "template": config.url, "url": sent.url,
            "url_masked": masked(sent.url), "host": host, "method": sent.method, "body": sent.body}


def _behind_earlier_news(schedule: Schedule, owed: Sequence[Delivery]) -> set[str]:
    """Status changes whose conversion has an earlier delivery not ended yet: they wait
    (owed, due again in a moment). Attributions come first and never wait."""
    changes = [delivery for delivery in owed if delivery.kind != ATTRIBUTED]
    if not changes:
        return set()
    earliest = schedule.unfinished(sorted({delivery.conversion_id for delivery in changes}))
    waiting = [delivery.delivery_id for delivery in changes
               if earliest.get(delivery.conversion_id, delivery.seq) < delivery.seq]
    if waiting:
        schedule.defer(waiting, EARLIER_NEWS_WAIT)
    return set(waiting)


@dataclass(frozen=True)
class Recorded:
    """What a call did to its delivery: its new status and whether its host was paused."""

    status: str
    paused: bool


def record_calls(schedule: Schedule, calls: Sequence[tuple[Delivery, AttemptResult]], policy: RetryPolicy,
                 now: datetime) -> list[Recorded]:
    """Log calls that ended about now and decide what follows each (the policy's
    ``after``), in one transaction. A delivery given up because its host kept failing
    until its retry time ran out pauses the host (nothing more is called there until an
    operator resumes it)."""
    attempts, schedule_rows, pauses, outcomes, recorded = [], [], [], [], []
    for delivery, result in calls:
        attempt = delivery.attempts + 1
        verdict = policy.after(result, attempt, delivery.owed_at, now)
        pause = verdict.given_up and bool(delivery.host)
        attempts.append({
            "delivery_id": delivery.delivery_id, "attempt": attempt, "url": delivery.url_masked or "",
            "status_code": result.status_code, "error": result.error,
            "latency_ms": Decimal(result.latency * 1000).quantize(Decimal("0.1"))})
        schedule_rows.append({
            "delivery_id": delivery.delivery_id, "status": verdict.status, "attempts": attempt,
            "next_attempt_at": verdict.retry_at or delivery.next_attempt_at,
            "last_status_code": result.status_code, "last_error": verdict.error})
        if pause:
            pauses.append({"host": delivery.host,
                           "reason": f"conversion {delivery.conversion_id}: {verdict.error}"})
        if verdict.status != "pending":
            outcomes.append(PostbackOutcome.record(
                delivery_id=delivery.delivery_id, conversion_id=delivery.conversion_id,
                partner_id=delivery.partner_id, offer_id=delivery.offer_id, url=delivery.url_masked or "",
                attempts=attempt, status_code=result.status_code,
                error=None if verdict.status == "delivered" else (verdict.error or "failed"),
                correlation_id=delivery.correlation_id, kind=delivery.kind,
                conversion_status=delivery.facts.get("status")))
        recorded.append(Recorded(verdict.status, pause))
    schedule.record(attempts, schedule_rows, pauses, outcomes)
    return recorded
