"""The postbacks store on PostgreSQL: the news's writes, the schedule, the delivery log.

One ``TrackedApplication`` (the consumers' positions, the inbox, the outbox of
``PostbackOutcome`` events and the view tables in one schema) implements what the
application names: ``NewsStore`` for the consumers' handlers, ``Schedule`` for the
delivery worker, ``DeliveryLog`` for the admin API. Reads go through the store's
``query``, so a handler inside a run sees what the run wrote before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import sql

from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import Table, json_rows, keys_param
from afflux_postbacks.adapters import schedule_sql as q
from afflux_postbacks.application.schedule import Delivery, Routing, Row
from afflux_postbacks.domain.outcome import PostbackOutcome
from afflux_postbacks.domain.routing import PostbackConfig


class PostbacksStore(TrackedApplication):
    """The schedule, the delivery log, and the views that route a postback."""

    name = "Postbacks"
    view_ddl: ClassVar = q.VIEW_DDL

    # -- NewsStore -----------------------------------------------------------------------

    def set_relationships(self, rows: Sequence[Row]) -> Sequence[Write]:
        return _batch(q.upsert_newest(q.RELATIONSHIPS, self.schema), rows)

    def set_partner_postbacks(self, rows: Sequence[Row]) -> Sequence[Write]:
        return _batch(q.upsert_newest(q.PARTNER_POSTBACKS, self.schema), rows)

    def set_offers(self, rows: Sequence[Row]) -> Sequence[Write]:
        return _batch(q.upsert_newest(q.OFFERS, self.schema), rows)

    def owe(self, rows: Sequence[Row]) -> Sequence[Write]:
        return _batch(q.insert(q.DELIVERIES, self.schema, q.OWED_COLUMNS), rows)

    def facts_of(self, delivery_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        statement = q.select(q.DELIVERIES, self.schema, columns=("delivery_id", "facts"))
        return {row["delivery_id"]: _facts(row["facts"])
                for row in self.query(statement, keys_param(delivery_ids, ("delivery_id",)))}

    # -- Schedule --------------------------------------------------------------------------

    def claim_owed(self, limit: int, lease: float) -> list[Delivery]:
        return self._claim(q.claim_owed(self.schema), {"lease": lease, "limit": limit})

    def claim_due(self, busy_hosts: Sequence[str], per_host: int, limit: int, lease: float) -> list[Delivery]:
        return self._claim(q.claim_due(self.schema), {"busy": list(busy_hosts), "per_host": per_host,
                                                      "limit": limit, "lease": lease})

    def routing(self, owed: Sequence[Delivery]) -> Routing:
        """The views' routing facts for ``owed``: a query per view for the whole batch."""
        pairs = sorted({(d.offer_id, d.partner_id) for d in owed})
        relationships = self._select(q.RELATIONSHIPS, [{"offer_id": o, "partner_id": p} for o, p in pairs])
        partners = self._select(q.PARTNER_POSTBACKS, sorted({d.partner_id for d in owed}))
        offers = self._select(q.OFFERS, sorted({d.offer_id for d in owed}))
        return Routing(
            {(row["offer_id"], row["partner_id"]): PostbackConfig(
                row["postback_url"] or "", row["postback_method"], row["postback_status_changes"])
             for row in relationships},
            {row["partner_id"]: PostbackConfig(row["url"] or "", row["method"], row["status_changes"])
             for row in partners},
            {row["offer_id"]: frozenset(row["silent_events"]) for row in offers})

    def unfinished(self, conversion_ids: Sequence[str]) -> dict[str, int]:
        earliest: dict[str, int] = {}
        for row in self._select(q.DELIVERIES, conversion_ids, by=("conversion_id",),
                                columns=("conversion_id", "seq", "status")):
            conversion = row["conversion_id"]
            if row["status"] in ("owed", "pending"):
                earliest[conversion] = min(row["seq"], earliest.get(conversion, row["seq"]))
        return earliest

    def resolve(self, rows: Sequence[Row]) -> None:
        self._execute(*_batch(q.resolve(self.schema), rows))

    def defer(self, delivery_ids: Sequence[str], delay: float) -> None:
        self._execute(Write(q.defer(self.schema), (delay, *keys_param(delivery_ids, ("delivery_id",)))))

    def record(self, attempts: Sequence[Row], schedule: Sequence[Row], pauses: Sequence[Row],
               outcomes: Sequence[PostbackOutcome.Created]) -> None:
        writes = [*_batch(q.insert(q.ATTEMPTS, self.schema, q.ATTEMPT_COLUMNS), attempts),
                  *_batch(q.after_calls(self.schema), schedule),
                  *_batch(q.insert(q.PAUSED_HOSTS, self.schema, ("host", "reason")), pauses)]
        if outcomes:
            self.save(*outcomes, writes=writes)
        else:
            self._execute(*writes)

    def paused_count(self) -> int:
        return int(self.query(q.count_paused(self.schema))[0]["paused"])

    # -- DeliveryLog -------------------------------------------------------------------------

    def page(self, *, partner_id: str | None, status: str | None, after: int | None,
             limit: int) -> list[Delivery]:
        statement = q.select_page(self.schema, partner=partner_id is not None, status=status is not None,
                                  after=after is not None)
        rows = self.query(statement, {"partner_id": partner_id, "status": status, "after": after,
                                      "limit": limit})
        return [_delivery(row) for row in rows]

    def attempts(self, delivery_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(row) for row in self._select(q.ATTEMPTS, delivery_ids, by=("delivery_id",),
                                                  order_by=("delivery_id", "attempt"))]

    def paused_hosts(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.query(q.select_paused(self.schema))]

    def resume_host(self, host: str) -> int | None:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(q.resume_host(self.schema), {"host": host})
            row = curs.fetchone()
        self._committed()
        return None if row is None else int(row["resumed"])

    # -- helpers ---------------------------------------------------------------------------

    def _select(self, table: Table, keys: Sequence[Any], *, by: tuple[str, ...] | None = None,
                columns: tuple[str, ...] | None = None, order_by: tuple[str, ...] = ()) -> list[Any]:
        if not keys:
            return []
        statement = q.select(table, self.schema, by, columns, order_by)
        return self.query(statement, keys_param(keys, by or table.key))

    def _execute(self, *writes: Write) -> None:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            for write in writes:
                curs.execute(write.statement, write.params)

    def _claim(self, statement: sql.SQL, params: dict[str, Any]) -> list[Delivery]:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, params)
            return [_delivery(row) for row in curs.fetchall()]


def _batch(statement: sql.SQL, rows: Sequence[Row]) -> list[Write]:
    """``statement`` with ``rows`` as its one JSON parameter (no write for no rows)."""
    return [Write(statement, (json_rows(rows),))] if rows else []


def _facts(facts: Any) -> dict[str, Any]:
    return json.loads(facts) if isinstance(facts, str) else dict(facts)


def _delivery(row: Any) -> Delivery:
    return Delivery(**{**row, "facts": _facts(row["facts"])})
