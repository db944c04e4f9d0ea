"""The notifications store on PostgreSQL: views, the mail queue and delivery log, the
dead-letter counts and the caught mail, with the outbox of NotificationOutcome events.

One ``TrackedApplication`` (the consumers' positions, the inbox, the outbox and the
tables in one schema) implements what the application names: ``NewsStore`` for the
consumers' handlers, ``Mailbox`` for the mail worker, ``MessageDesk`` for the mail
asked for over HTTP, ``Digests`` for the dead-letter digests, and the reads of the
admin API. Reads go through the store's ``query``, so a handler inside a run sees what
the run wrote before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from psycopg import sql

from afflux_notifications.adapters import tables as q
from afflux_notifications.application.digests import DeadLetterCount
from afflux_notifications.application.messages import IdempotencyKeyReused, Requested
from afflux_notifications.application.news import OfferCard, Standing
from afflux_notifications.application.sending import Claimed, Ended
from afflux_notifications.domain.addresses import same_recipient
from afflux_notifications.domain.delivery import Status
from afflux_notifications.domain.digests import digest_due, merged
from afflux_notifications.domain.mailing import Mail, PartnerCard
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import Table, json_rows, keys_param


@dataclass(frozen=True)
class DeadLetterBatch:
    """Dead letters of one DLQ partition read together: offsets ``start`` to ``end``
    (exclusive), their reasons, and when they were dead-lettered."""

    topic: str
    partition: int
    start: int
    end: int
    reasons: tuple[str, ...]
    first_at: datetime
    last_at: datetime


class NotificationsStore(TrackedApplication):
    """Everything the notifications service keeps."""

    name = "Notifications"
    view_ddl: ClassVar = q.VIEW_DDL

    # -- NewsStore -------------------------------------------------------------------------

    def partners(self, partner_ids: Collection[str]) -> dict[str, PartnerCard]:
        return {row["partner_id"]: PartnerCard(row["partner_id"], row["name"], row["email"],
                                               tuple(row["contacts"]), row["status"])
                for row in self._select(q.PARTNERS, sorted(partner_ids))}

    def set_partners(self, cards: Sequence[PartnerCard]) -> Sequence[Write]:
        return self._upsert(q.PARTNERS, [{"partner_id": c.partner_id, "name": c.name, "email": c.email,
                                          "contacts": list(c.contacts), "status": c.status} for c in cards])

    def opted_out(self, partner_ids: Collection[str]) -> dict[str, frozenset[str]]:
        return {row["partner_id"]: frozenset(row["opted_out"])
                for row in self._select(q.PREFERENCES, sorted(partner_ids))}

    def offers(self, offer_ids: Collection[str]) -> dict[str, OfferCard]:
        return {row["offer_id"]: OfferCard(row["offer_id"], row["name"], row["status"])
                for row in self._select(q.OFFERS, sorted(offer_ids))}

    def set_offers(self, cards: Sequence[OfferCard]) -> Sequence[Write]:
        return self._upsert(q.OFFERS, [{"offer_id": c.offer_id, "name": c.name, "status": c.status}
                                       for c in cards])

    def standings(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], Standing]:
        keys = [{"offer_id": offer_id, "partner_id": partner_id} for offer_id, partner_id in sorted(pairs)]
        return {(row["offer_id"], row["partner_id"]): Standing(row["approved"], row["application"])
                for row in self._select(q.STANDINGS, keys)}

    def set_standings(self, standings: Mapping[tuple[str, str], Standing]) -> Sequence[Write]:
        return self._upsert(q.STANDINGS, [
            {"offer_id": offer_id, "partner_id": partner_id, "approved": s.approved,
             "application": s.application}
            for (offer_id, partner_id), s in standings.items()])

    def approved_partners(self, offer_ids: Collection[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for row in self._select(q.STANDINGS, sorted(offer_ids), by=("offer_id",), order_by=("partner_id",)):
            if row["approved"]:
                found.setdefault(row["offer_id"], []).append(row["partner_id"])
        return found

    def queue(self, mails: Sequence[Mail]) -> Sequence[Write]:
        write = q.NOTIFICATIONS.write(q.NOTIFICATIONS.insert(self.schema, q.MAIL_COLUMNS),
                                      [_mail_row(mail) for mail in mails])
        return [write] if write is not None else []

    # -- Mailbox ---------------------------------------------------------------------------

    def claim(self, worker: int, limit: int) -> list[Claimed]:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(q.claim(self.schema), {"worker": worker, "limit": limit})
            return [_claimed(row) for row in curs.fetchall()]

    def hand_over(self, notification_id: str, claim: str, subject: str, message_id: str) -> bool:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(q.hand_over(self.schema), {"notification_id": notification_id, "claim": claim,
                                                    "subject": subject, "message_id": message_id})
            return curs.fetchone() is not None

    def dead_handovers(self) -> list[Claimed]:
        return [_claimed(row) for row in self.query(q.dead_handovers(self.schema))]

    def record(self, ended: Sequence[Ended]) -> None:
        rows = [{"notification_id": e.claimed.notification_id, "claim": e.claimed.claim,
                 "status": e.verdict.status.value, "attempts": e.attempts,
                 "next_attempt_at": e.verdict.retry_at,
                 "last_code": e.code, "last_error": e.verdict.error, "subject": e.subject,
                 "message_id": e.message_id, "ended": e.verdict.ended} for e in ended]
        writes = [Write(q.record(self.schema), (json_rows(rows),))]
        outcomes = [e.outcome for e in ended if e.outcome is not None]
        if outcomes:
            self.save(*outcomes, writes=writes)
        else:
            self._execute(writes)

    # -- MessageDesk -----------------------------------------------------------------------

    def queue_requested(self, mails: Sequence[Mail], request_sha256: str) -> list[Requested]:
        rows = [{**_mail_row(mail), "request_sha256": request_sha256} for mail in mails]
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(q.NOTIFICATIONS.insert(self.schema, q.MAIL_COLUMNS), (json_rows(rows),))
            curs.execute(q.requested(self.schema), ([mail.notification_id for mail in mails],))
            found = curs.fetchall()
            if any(row["request_sha256"] != request_sha256 for row in found):
                raise IdempotencyKeyReused("the idempotency key was used for another request")
        self._committed()
        return [Requested(row["notification_id"], row["recipient"], row["status"]) for row in found]

    # -- Digests ---------------------------------------------------------------------------

    def dead_letter_positions(self) -> dict[tuple[str, int], int]:
        statement = sql.SQL("SELECT topic, partition, next_offset FROM {}").format(
            q.DEAD_LETTER_POSITIONS.ident(self.schema))
        return {(row["topic"], row["partition"]): row["next_offset"] for row in self.query(statement)}

    def count_dead_letters(self, batches: Sequence[DeadLetterBatch]) -> list[DeadLetterBatch]:
        """Count each batch and move its partition's position, in one transaction; a batch
        whose position another instance moved first is not counted (returned: the caller
        re-reads from the stored position)."""
        stale: list[DeadLetterBatch] = []
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            for batch in batches:
                curs.execute(q.advance_dead_letter_position(self.schema),
                             {"topic": batch.topic, "partition": batch.partition, "from": batch.start,
                              "to": batch.end})
                if curs.fetchone() is None:
                    stale.append(batch)
                    continue
                curs.execute(sql.SQL("SELECT reasons FROM {} WHERE topic = %s FOR UPDATE").format(
                    q.DEAD_LETTERS.ident(self.schema)), (batch.topic,))
                row = curs.fetchone()
                reasons = merged(_json(row["reasons"]) if row else {}, batch.reasons)
                curs.execute(q.count_dead_letters(self.schema), {
                    "topic": batch.topic, "count": batch.end - batch.start, "reasons": json.dumps(reasons),
                    "first_at": batch.first_at, "last_at": batch.last_at})
        return stale

    def take_due(self, every: timedelta, mails_for: Callable[[DeadLetterCount], Sequence[Mail]]) -> int:
        taken = 0
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(q.due_digests(self.schema))
            now = datetime.now(UTC)
            for row in curs.fetchall():
                if not digest_due(row["pending"], row["last_digest_at"], now, every):
                    continue
                count = DeadLetterCount(row["topic"], row["pending"], _json(row["reasons"]), row["first_at"],
                                        row["last_at"], row["digests"] + 1)
                mails = [_mail_row(mail) for mail in mails_for(count)]
                if mails:
                    curs.execute(q.NOTIFICATIONS.insert(self.schema, q.MAIL_COLUMNS), (json_rows(mails),))
                curs.execute(q.digested(self.schema), {"topic": row["topic"]})
                taken += 1
        if taken:
            self._committed()
        return taken

    # -- the admin API's reads and writes ---------------------------------------------------

    def page(self, *, recipient: str | None, partner_id: str | None, status: str | None, after: int | None,
             limit: int) -> list[dict[str, Any]]:
        statement = q.page(self.schema, recipient=recipient is not None, partner=partner_id is not None,
                           status=status is not None, after=after is not None)
        return [dict(row) for row in self.query(statement, {
            "recipient": same_recipient(recipient) if recipient else None, "partner_id": partner_id,
            "status": status, "after": after, "limit": limit})]

    def preferences(self, partner_id: str) -> list[str]:
        return sorted(self.opted_out([partner_id]).get(partner_id, ()))

    def set_preferences(self, partner_id: str, opted_out: Sequence[str]) -> None:
        self._execute(self._upsert(q.PREFERENCES, [{"partner_id": partner_id, "opted_out": sorted(opted_out),
                                                    "updated_at": datetime.now(UTC)}]))

    def catch(self, mail_from: str, recipients: Sequence[str], subject: str | None, message_id: str | None,
              text: str | None, html: str | None) -> None:
        """Keep what the embedded catcher was sent (before it answers 250)."""
        self._execute([Write(q.CAUGHT.insert(self.schema, ("mail_from", "recipients", "subject", "message_id",
                                                              "text_body", "html_body")),
                             (json_rows([{"mail_from": mail_from, "recipients": list(recipients),
                                          "subject": subject, "message_id": message_id, "text_body": text,
                                          "html_body": html}]),))])

    def caught(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [dict(row) for row in self.query(q.caught_page(self.schema), {"after": after, "limit": limit})]

    # -- helpers -----------------------------------------------------------------------------

    def _select(self, table: Table, keys: Sequence[Any], *, by: tuple[str, ...] | None = None,
                order_by: tuple[str, ...] = ()) -> list[Any]:
        if not keys:
            return []
        statement = table.select(self.schema, by=by, order_by=order_by)
        return self.query(statement, keys_param(keys, by or table.key))

    def _upsert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[Write]:
        if not rows:
            return []
        update = [name for name in rows[0] if name not in table.key]
        write = table.write(table.upsert(self.schema, update, columns=tuple(rows[0])), rows)
        return [write] if write is not None else []

    def _execute(self, writes: Sequence[Write]) -> None:
        with self.tracked_recorder.datastore.transaction(commit=True) as curs:
            for write in writes:
                curs.execute(write.statement, write.params)


def _mail_row(mail: Mail) -> dict[str, Any]:
    return {"notification_id": mail.notification_id, "kind": mail.kind, "audience": mail.audience.value,
            "recipient": mail.recipient, "recipient_key": same_recipient(mail.recipient),
            "partner_id": mail.partner_id, "source": mail.source,
            "source_event_id": str(mail.source_event_id) if mail.source_event_id else None,
            "correlation_id": mail.correlation_id, "data": None if mail.skipped else dict(mail.data),
            "request_sha256": None,
            "status": Status.SKIPPED.value if mail.skipped else Status.QUEUED.value,
            "last_error": mail.skipped, "ended_at": datetime.now(UTC) if mail.skipped else None}


def _claimed(row: Mapping[str, Any]) -> Claimed:
    return Claimed(**{**row, "data": _json(row["data"]) if row["data"] is not None else {},
                      "claim": str(row["claim"]) if row["claim"] is not None else ""})


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)
