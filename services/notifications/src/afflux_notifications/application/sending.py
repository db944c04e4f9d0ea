"""The mail worker: queued mail is rendered, handed to the SMTP server once, and its end
recorded (``domain/delivery.py`` states the rule and its one ambiguous case).

A worker is *alive* while it holds its lease (``Lease``: a PostgreSQL session lock of
its own), and claims queued mail under its name. A claim of a worker that is no longer
alive (killed, its database session gone) is taken over at once, not after a timeout:

- its ``sending`` mail had not been handed over (``hand_over`` comes first, committed),
  so another worker claims and sends it;
- its ``handing_over`` mail may have been handed over: it is recorded ``uncertain``
  (``sweep``) and never sent again on its own.

``hand_over`` is a compare-and-set on the claim: a worker whose claim was taken over
meanwhile (its lease lost) finds out before ``DATA`` and leaves the mail to the new
owner, so two conversations never hand one mail over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import Counter

from afflux_contracts import recipient_sha256
from afflux_notifications.domain.delivery import (
    UNKNOWN_OUTCOME,
    Attempt,
    RetryPolicy,
    Status,
    Verdict,
    after,
)
from afflux_notifications.domain.outcome import NotificationOutcome
from afflux_plumbing.outage import OUTAGES, Backoff, Health

log = logging.getLogger(__name__)

ENDED = Counter("afflux_notifications_ended_total", "Mails ended, by status", ["status"])
ATTEMPTS = Counter("afflux_notifications_attempts_total", "SMTP conversations, by outcome", ["outcome"])
SWEEP_EVERY = 2.0
"""Seconds between looks for mail a dead worker was handing over."""


@dataclass(frozen=True)
class Claimed:
    """A mail claimed by this worker (``claim`` names the claim; ``attempts``: the
    conversations it had before)."""

    notification_id: str
    kind: str
    audience: str
    recipient: str
    partner_id: str | None
    data: Mapping[str, Any]
    source_event_id: str | None
    correlation_id: str | None
    attempts: int
    queued_at: datetime
    claim: str
    subject: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Outgoing:
    """One message as it is handed over."""

    recipient: str
    subject: str
    text: str
    html: str
    message_id: str


@dataclass(frozen=True)
class Ended:
    """What one conversation (or a sweep) leaves of a mail: its new state and, when it
    ended, its outcome event."""

    claimed: Claimed
    verdict: Verdict
    attempts: int
    code: int | None
    subject: str | None
    message_id: str
    outcome: NotificationOutcome.Created | None


class RenderError(ValueError):
    """The mail's template cannot be rendered with its data: it never will be."""


class Mailbox(Protocol):
    """The queue of mail in PostgreSQL."""

    def claim(self, worker: int, limit: int) -> list[Claimed]:
        """Up to ``limit`` due queued mails, and ``sending`` mails of dead workers, now
        ``worker``'s (``sending``, a new claim each)."""
        ...

    def hand_over(self, notification_id: str, claim: str, subject: str, message_id: str) -> bool:
        """``sending`` → ``handing_over`` if the claim is still this one; committed."""
        ...

    def dead_handovers(self) -> list[Claimed]:
        """``handing_over`` mails of workers that are no longer alive."""
        ...

    def record(self, ended: Sequence[Ended]) -> None:
        """Each mail's new state, while its claim is still the one it had, and the outcome
        events, in one transaction (an outcome recorded before raises IntegrityError)."""
        ...


class Renderer(Protocol):
    def render(self, kind: str, data: Mapping[str, Any]) -> Rendered:
        """Subject, text and HTML of ``kind`` with ``data``; ``RenderError`` if it cannot be."""
        ...


HandOver = Callable[[], Awaitable[bool]]


class Mailer(Protocol):
    async def send(self, message: Outgoing, hand_over: HandOver) -> Attempt | None:
        """One SMTP conversation; ``hand_over()`` is awaited right before ``DATA`` and the
        message is not handed over unless it returns True (then: None)."""
        ...


class Lease(Protocol):
    """This worker's liveness, as other workers see it."""

    worker: int

    async def hold(self) -> None:
        """Take (or take again, under a new ``worker``) the lease."""
        ...

    async def held(self) -> bool: ...

    async def release(self) -> None: ...


def message_id(notification_id: str, domain: str) -> str:
    """The ``Message-ID`` of a mail: the same for every conversation of it, and for any
    resend an operator makes, so a mailbox can tell a repeat."""
    return f"<{notification_id}@{domain}>"


class MailWorker:
    """Sends the mailbox's queued mail through ``mailer``, ``concurrency`` at a time."""

    def __init__(self, mailbox: Mailbox, renderer: Renderer, mailer: Mailer, lease: Lease,
                 policy: RetryPolicy, *, domain: str, concurrency: int = 4, idle_delay: float = 0.5) -> None:
        self.mailbox = mailbox
        self.renderer = renderer
        self.mailer = mailer
        self.lease = lease
        self.policy = policy
        self.domain = domain
        self.concurrency = concurrency
        self.idle_delay = idle_delay
        self.health = Health()
        self._wake_up = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._swept_at = float("-inf")

    def wake(self) -> None:
        """Look for mail now (something was queued); callable from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_up.set)

    async def run(self) -> None:
        """Send until cancelled; outages are waited out (not-ready meanwhile)."""
        self._loop = asyncio.get_running_loop()
        backoff = Backoff()
        while True:
            try:
                if not await self.lease.held():
                    await self.lease.hold()
                busy = await self.round()
                self.health.recovered()
                backoff.reset()
            except OUTAGES as error:
                self.health.failed("mail worker", error)
                await backoff.wait()
                continue
            except Exception as error:  # a bug must not stop the mail silently
                log.exception("mail worker round failed")
                self.health.failed("mail worker", error)
                await backoff.wait()
                continue
            if not busy:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_up.wait(), self.idle_delay)
                self._wake_up.clear()

    async def round(self) -> bool:
        """Sweep (now and then), claim a batch and send it; whether there was any."""
        now = asyncio.get_running_loop().time()
        if now >= self._swept_at + SWEEP_EVERY:
            await self.sweep()
            self._swept_at = now
        claimed = await asyncio.to_thread(self.mailbox.claim, self.lease.worker, self.concurrency)
        if claimed:
            ended = await asyncio.gather(*(self._send(mail) for mail in claimed))
            await self._record([one for one in ended if one is not None])
        return bool(claimed)

    async def sweep(self) -> int:
        """Mail a dead worker was handing over: ``uncertain``, never sent again on its own."""
        dead = await asyncio.to_thread(self.mailbox.dead_handovers)
        ended = [self._ended(mail, Verdict(Status.UNCERTAIN, error=UNKNOWN_OUTCOME), mail.attempts + 1, None,
                             mail.subject, mail.message_id or message_id(mail.notification_id, self.domain))
                 for mail in dead]
        if ended:
            log.warning("%d mail(s) were being handed over by a worker that died: recorded uncertain, "
                        "not sent again", len(ended))
            await self._record(ended)
        return len(ended)

    async def _send(self, mail: Claimed) -> Ended | None:
        """One conversation; None when the claim was lost before the hand-over."""
        mid = message_id(mail.notification_id, self.domain)
        try:
            rendered = self.renderer.render(mail.kind, mail.data)
        except RenderError as error:
            return self._ended(mail, Verdict(Status.FAILED, error=f"template {mail.kind}: {error}"),
                               mail.attempts, None, None, mid)

        async def hand_over() -> bool:
            return await asyncio.to_thread(self.mailbox.hand_over, mail.notification_id, mail.claim,
                                           rendered.subject, mid)

        outgoing = Outgoing(mail.recipient, rendered.subject, rendered.text, rendered.html, mid)
        attempt = await self.mailer.send(outgoing, hand_over)
        if attempt is None:
            log.warning("mail %s was claimed by another worker before it was handed over",
                        mail.notification_id)
            return None
        ATTEMPTS.labels("accepted" if attempt.accepted else attempt.stage.value).inc()
        attempts = mail.attempts + 1
        verdict = after(attempt, attempts, mail.queued_at, datetime.now(UTC), self.policy)
        masked = Verdict(verdict.status, verdict.retry_at, _masked(verdict.error, mail.recipient))
        return self._ended(mail, masked, attempts, attempt.code, rendered.subject, mid)

    def _ended(self, mail: Claimed, verdict: Verdict, attempts: int, code: int | None, subject: str | None,
               mid: str) -> Ended:
        outcome = None
        if verdict.ended:
            outcome = NotificationOutcome.record(
                notification_id=mail.notification_id, template=mail.kind,
                recipient_sha256=recipient_sha256(mail.recipient), audience=mail.audience,
                partner_id=mail.partner_id, source_event_id=mail.source_event_id, attempts=attempts,
                message_id=mid, correlation_id=mail.correlation_id,
                error=None if verdict.status is Status.SENT else (verdict.error or verdict.status.value),
                outcome_unknown=verdict.status is Status.UNCERTAIN)
        return Ended(mail, verdict, attempts, code, subject, mid, outcome)

    async def _record(self, ended: Sequence[Ended]) -> None:
        """Record what ended together; if that fails on an outcome recorded before (a race
        with a sweep), each alone, dropping the ones already ended."""
        if not ended:
            return
        backoff = Backoff()
        while True:
            try:
                await asyncio.to_thread(self.mailbox.record, ended)
                break
            except OUTAGES as error:  # what was sent must be recorded: wait for the database
                self.health.failed(f"recording {len(ended)} mail(s)", error)
                await backoff.wait()
            except Exception:
                await self._record_alone(ended)
                return
        for one in ended:
            if one.verdict.ended:
                ENDED.labels(one.verdict.status.value).inc()
            if one.verdict.status is Status.FAILED:
                log.warning("mail %s (%s) failed: %s", one.claimed.notification_id, one.claimed.kind,
                            one.verdict.error)

    async def _record_alone(self, ended: Sequence[Ended]) -> None:
        if len(ended) == 1:
            log.exception("mail %s: its end was recorded already", ended[0].claimed.notification_id)
            return
        for one in ended:
            await self._record([one])

def _masked(error: str | None, recipient: str) -> str | None:
    """An SMTP server's words without the address (they travel on the log)."""
    if error is None:
        return None
    return error.replace(recipient, "<recipient>").replace(recipient.lower(), "<recipient>")
