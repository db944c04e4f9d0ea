"""The gateway's projections: what each consumed event changes in its views.

Five consumers (one per topic, each in its own group) apply to this store; every
change commits with the consumer's position (``TrackedApplication``), in runs of up
to 100 records per transaction, so ingest keeps up with tracking's click rate.

Counting rules (the reporting projection, ``counters``):
- a valid click counts once per transaction_id in its hour and subs; ``unique``
  clicks are those tracking marked unique;
- an attributed conversion (approved or pending) counts in the hour it converted
  and its click's subs, with its payout and revenue; a review moves the figures
  (rejected or reversed: the conversion and its money leave; adjusted: the payout
  changes by the difference), in the conversion's own hour;
- a priced click (CPC) or thousand impressions (CPM) adds its payout and revenue.
A conversion whose click the tracking consumer has not applied yet waits
(``RetryLater``, see ``click_wait``): the click precedes it on the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from psycopg import Cursor, sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from afflux_contracts import (
    BalanceAdjusted,
    ClickPriced,
    ClickRecorded,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    Envelope,
    Event,
    ImpressionsPriced,
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerCreated,
    PartnerPostbackDelivered,
    PartnerPostbackFailed,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    StatementIssued,
    StatementPaid,
    StatusChange,
)
from afflux_gateway.adapters import views_sql as q
from afflux_gateway.application.click_wait import ClickWait
from afflux_gateway.application.reads import GatewayReads
from afflux_plumbing.consume import RetryLater
from afflux_plumbing.store import Changes, RunItem, Write

NO_SUBS = ("", "", "", "", "")


def hour_of(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class ClickWrite(Write):
    """A click's counting: alone it is one statement; in a run, the run's clicks are
    counted together in one (``Gateway.apply_run``)."""


CLICK_FIELDS = ("transaction_id", "partner_id", "offer_id", *q.SUBS)


class Gateway(GatewayReads):
    """The partner-facing views and the reporting counters."""

    name = "Gateway"
    view_ddl: ClassVar = q.VIEW_DDL
    click_wait: ClickWait

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.click_wait = ClickWait()

    def apply_run(self, run: Sequence[RunItem]) -> list[bool]:
        """``TrackedApplication.apply_run`` with two round trips fewer per record, so the
        projection keeps up with tracking's click rate: the run's event_ids are claimed in
        one statement, and its clicks counted in one (before any other write, in order).
        What it commits is the same, in one transaction with the run's last position."""
        recorder = self.tracked_recorder
        applied: list[bool] = []
        with recorder.run_transaction() as curs:
            curs.execute(
                q.claim_inbox(recorder.inbox_table),
                ([item.event_id for item in run], [str(item.position) for item in run]),
            )
            unclaimed = {row["event_id"] for row in curs.fetchall()}
            clicks: list[Mapping[str, Any]] = []
            for item in run:
                fresh = item.event_id in unclaimed
                unclaimed.discard(item.event_id)  # the same event_id twice in a run: once
                applied.append(fresh)
                if not fresh:
                    continue
                changes = item.changes()
                if changes.aggregates:
                    raise TypeError("the gateway has no aggregates of its own")
                for write in changes.writes:
                    if isinstance(write, ClickWrite) and isinstance(write.params, Mapping):
                        clicks.append(write.params)
                        continue
                    self._count_clicks(curs, clicks)
                    clicks = []
                    curs.execute(write.statement, write.params)
            self._count_clicks(curs, clicks)
            recorder.track_run(curs, run[-1].position.tracking())
        self._committed()
        return applied

    def _count_clicks(self, curs: Cursor[DictRow], clicks: Sequence[Mapping[str, Any]]) -> None:
        if clicks:
            rows = [
                {
                    **{name: click[name] for name in CLICK_FIELDS},
                    "hour": click["hour"].isoformat(),
                    "uniq": click["unique"],
                }
                for click in clicks
            ]
            curs.execute(q.count_clicks(self.schema), (json.dumps(rows),))

    # -- afflux.partners.v1 -------------------------------------------------------------

    def apply_partners_event(self, envelope: Envelope[Event]) -> Changes:
        p = envelope.payload
        s = self.schema
        if isinstance(p, PartnerCreated | PartnerUpdated):
            currency = p.billing.currency if p.billing else None
            return _one(q.upsert_partner(s), (p.partner_id, p.name, p.email, p.status.value, currency))
        if isinstance(p, PartnerStatusChanged):
            return _one(q.update_partner_status(s), (p.status.value, p.partner_id))
        if isinstance(p, PartnerApiKeyIssued):
            return _one(q.insert_key(s), (p.key_id, p.partner_id, p.key_sha256, p.prefix, p.issued_at))
        if isinstance(p, PartnerApiKeyRevoked):
            return _one(q.revoke_key(s), (p.revoked_at, p.key_id, p.partner_id))
        if isinstance(p, OfferCreated | OfferUpdated):
            events = [e.model_dump(mode="json") for e in p.events]
            return _one(
                q.upsert_offer(s),
                (
                    p.offer_id,
                    p.name,
                    p.status.value,
                    p.visibility.value,
                    p.currency,
                    Jsonb(p.payout.model_dump(mode="json")),
                    Jsonb(events),
                ),
            )
        if isinstance(p, OfferStatusChanged):
            return _one(q.update_offer_status(s), (p.status.value, p.offer_id))
        if isinstance(p, RelationshipSet):
            payout = Jsonb(p.payout.model_dump(mode="json")) if p.payout else None
            events = [e.model_dump(mode="json") for e in p.events]
            return _one(
                q.upsert_relationship(s),
                (p.offer_id, p.partner_id, p.approved, p.application, payout, Jsonb(events)),
            )
        return Changes()

    # -- afflux.tracking.v1 -------------------------------------------------------------

    def apply_tracking_event(self, envelope: Envelope[Event]) -> Changes:
        p = envelope.payload
        if not isinstance(p, ClickRecorded) or not p.valid:
            return Changes()
        subs = tuple(_sub(value) for value in (p.sub1, p.sub2, p.sub3, p.sub4, p.sub5))
        params = q.counter_params(p.partner_id, hour_of(p.clicked_at), p.offer_id, subs)
        params |= {"transaction_id": p.transaction_id, "unique": 1 if p.unique else 0}
        return Changes(writes=[ClickWrite(q.count_click(self.schema), params)])

    # -- afflux.attribution.v1 ----------------------------------------------------------

    def apply_attribution_event(self, envelope: Envelope[Event]) -> Changes:
        p = envelope.payload
        if isinstance(p, ConversionAttributed):
            return self._attributed(p)
        if isinstance(p, ConversionRejected):
            return _one(
                q.insert_conversion(self.schema),
                (
                    p.conversion_id,
                    p.partner_id,
                    p.offer_id,
                    p.transaction_id,
                    None,
                    "rejected",
                    p.reason.value,
                    None,
                    None,
                    None,
                    p.converted_at,
                    hour_of(p.converted_at),
                    *NO_SUBS,
                ),
            )
        if isinstance(p, ConversionStatusChanged):
            return self._reviewed(p)
        if isinstance(p, ClickPriced):
            subs = self._click_subs(p.transaction_id) or NO_SUBS
            revenue = p.revenue.amount if p.revenue else Decimal(0)
            return self._counter(
                p.partner_id, hour_of(p.clicked_at), p.offer_id, subs, 0, p.payout.amount, revenue
            )
        if isinstance(p, ImpressionsPriced):
            revenue = p.revenue.amount if p.revenue else Decimal(0)
            return self._counter(
                p.partner_id, hour_of(p.last_impressed_at), p.offer_id, NO_SUBS, 0, p.payout.amount, revenue
            )
        return Changes()

    def _attributed(self, p: ConversionAttributed) -> Changes:
        if self.conversion(p.conversion_id) is not None:
            return Changes()  # the same decision re-published: counted once already
        subs = self._click_subs(p.transaction_id)
        if subs is None:
            if p.coupon_code is None and not self.click_wait.give_up(p.transaction_id):
                raise RetryLater(f"conversion {p.conversion_id}: click {p.transaction_id} not applied yet")
            subs = NO_SUBS
        else:
            self.click_wait.found(p.transaction_id)
        revenue = p.revenue.amount if p.revenue else None
        hour = hour_of(p.converted_at)
        insert = Write(
            q.insert_conversion(self.schema),
            (
                p.conversion_id,
                p.partner_id,
                p.offer_id,
                p.transaction_id,
                p.event,
                p.status.value,
                None,
                p.payout.amount,
                revenue,
                p.payout.currency,
                p.converted_at,
                hour,
                *subs,
            ),
        )
        counted = self._counter(
            p.partner_id, hour, p.offer_id, subs, 1, p.payout.amount, revenue or Decimal(0)
        )
        return Changes(writes=[insert, *counted.writes])

    def _reviewed(self, p: ConversionStatusChanged) -> Changes:
        row = self.conversion(p.conversion_id)
        if row is None:
            raise RetryLater(f"review of conversion {p.conversion_id}, not applied yet")
        if row["status"] in ("rejected", "reversed"):
            return Changes()  # nothing counted any more
        subs = tuple(row[name] for name in q.SUBS)
        payout, revenue = row["payout"] or Decimal(0), row["revenue"] or Decimal(0)
        update = Write(
            q.update_conversion(self.schema),
            (_status_after(p.status, row["status"]), p.reason, p.payout.amount, p.conversion_id),
        )
        if p.status in (StatusChange.REJECTED, StatusChange.REVERSED):
            moved = self._counter(
                row["partner_id"], row["hour"], row["offer_id"], subs, -1, -payout, -revenue
            )
        elif p.status is StatusChange.ADJUSTED:
            moved = self._counter(
                row["partner_id"], row["hour"], row["offer_id"], subs, 0, p.payout.amount - payout, Decimal(0)
            )
        else:
            moved = Changes()
        return Changes(writes=[update, *moved.writes])

    def _click_subs(self, transaction_id: str) -> tuple[str, ...] | None:
        rows = self.query(q.select_click(self.schema), (transaction_id,))
        return tuple(rows[0][name] for name in q.SUBS) if rows else None

    def _counter(
        self,
        partner_id: str,
        hour: datetime,
        offer_id: str,
        subs: tuple[str, ...],
        conversions: int,
        payout: Decimal,
        revenue: Decimal,
    ) -> Changes:
        params = q.counter_params(partner_id, hour, offer_id, subs)
        params |= {"conversions": conversions, "payout": payout, "revenue": revenue}
        return Changes(writes=[Write(q.add_to_counter(self.schema), params)])

    # -- afflux.payouts.v1 and afflux.postbacks.v1 --------------------------------------

    def apply_payouts_event(self, envelope: Envelope[Event]) -> Changes:
        p = envelope.payload
        if isinstance(p, StatementIssued):
            lines = [line.model_dump(mode="json") for line in p.lines]
            return _one(
                q.upsert_statement(self.schema),
                (
                    p.statement_id,
                    p.partner_id,
                    p.currency,
                    p.total,
                    p.status.value,
                    p.period_end,
                    p.issued_at,
                    Jsonb(lines),
                ),
            )
        if isinstance(p, StatementPaid):
            return _one(
                q.mark_statement_paid(self.schema), (p.paid_at, p.reference, p.statement_id, p.partner_id)
            )
        if isinstance(p, BalanceAdjusted):
            return _one(
                q.insert_adjustment(self.schema),
                (p.adjustment_id, p.partner_id, p.currency, p.amount, p.reason, p.adjusted_at),
            )
        return Changes()

    def apply_postbacks_event(self, envelope: Envelope[Event]) -> Changes:
        p = envelope.payload
        if isinstance(p, PartnerPostbackDelivered):
            return _one(
                q.upsert_postback(self.schema),
                (
                    p.delivery_id,
                    p.partner_id,
                    p.conversion_id,
                    p.offer_id,
                    p.url,
                    "delivered",
                    p.attempts,
                    p.status_code,
                    None,
                    p.delivered_at,
                ),
            )
        if isinstance(p, PartnerPostbackFailed):
            return _one(
                q.upsert_postback(self.schema),
                (
                    p.delivery_id,
                    p.partner_id,
                    p.conversion_id,
                    p.offer_id,
                    p.url,
                    "failed",
                    p.attempts,
                    p.status_code,
                    p.error,
                    p.failed_at,
                ),
            )
        return Changes()


def _one(statement: sql.Composed, params: tuple[object, ...]) -> Changes:
    return Changes(writes=[Write(statement, params)])


def _sub(value: str | None) -> str:
    return value or ""


def _status_after(change: StatusChange, current: str) -> str:
    if change is StatusChange.ADJUSTED:
        return "approved" if current in ("attributed", "pending") else current
    return change.value
