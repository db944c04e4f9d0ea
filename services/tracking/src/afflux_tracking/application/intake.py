"""The hot path's use cases: record a click or a conversion report on the log, and
only then tell the caller where to go (effectively-once starts with acks=all)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from afflux_contracts import ClickRecorded, ConversionReported, Envelope, utc_now
from afflux_tracking.application.routing import Tracking
from afflux_tracking.domain.links import Subs, click_macros, fill_macros, new_transaction_id
from afflux_tracking.domain.postbacks import ConversionReport, new_conversion_id
from afflux_tracking.domain.routing import ClickDecision, UnknownLink, decide_click

PRODUCER = "tracking"

log = logging.getLogger(__name__)

CLICKS = Counter("afflux_tracking_clicks_total", "Clicks recorded, by outcome", ["outcome"])
CONVERSIONS = Counter("afflux_tracking_conversions_reported_total", "Conversion reports recorded")


class Publishes(Protocol):
    """What intake needs of the plumbing ``Publisher``: put one envelope on the log and
    return only after the broker's acks=all acknowledgement."""

    async def publish(self, envelope: Envelope[Any]) -> Any: ...


class Unavailable(Exception):
    """The log or the routing view cannot be reached: nothing was recorded, the caller
    should retry (never a redirect for a click that is not on the log)."""


@dataclass(frozen=True)
class Visit:
    """One request on a tracking link, as the edge saw it."""

    offer_id: str
    partner_id: str
    subs: Subs
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None


@dataclass(frozen=True)
class RecordedClick:
    """A click now on the log, and where its visitor goes (``None``: nowhere)."""

    click: ClickRecorded
    decision: ClickDecision


class Intake:
    """Clicks and conversion reports onto ``afflux.tracking.v1``."""

    def __init__(self, store: Tracking, publisher: Publishes, publish_timeout: float = 5.0) -> None:
        self.store = store
        self.publisher = publisher
        self.publish_timeout = publish_timeout

    async def record_click(self, visit: Visit) -> RecordedClick | UnknownLink:
        """Route the click by the view, put it on the log with its outcome, return it.
        A link to an unknown offer or partner is not a click and is not recorded."""
        try:
            link = await asyncio.to_thread(self.store.link, visit.offer_id, visit.partner_id)
        except Exception as error:
            # Database down, pool closed or exhausted: no way to route, so nothing to record.
            log.exception("routing view unavailable for %s/%s", visit.offer_id, visit.partner_id)
            raise Unavailable("the routing view is unavailable") from error
        decision = decide_click(link)
        if isinstance(decision, UnknownLink):
            return decision
        transaction_id = new_transaction_id()
        redirect_url = None
        if decision.target is not None:
            macros = click_macros(transaction_id, visit.offer_id, visit.partner_id, visit.subs)
            redirect_url = fill_macros(decision.target, macros)
        click = ClickRecorded(
            transaction_id=transaction_id,
            offer_id=visit.offer_id,
            partner_id=visit.partner_id,
            clicked_at=utc_now(),
            outcome=decision.outcome,
            redirect_url=redirect_url,
            ip=visit.ip,
            user_agent=visit.user_agent,
            referer=visit.referer,
            **visit.subs.as_dict(),
        )
        await self._publish(Envelope.wrap(click, producer=PRODUCER, occurred_at=click.clicked_at))
        CLICKS.labels(outcome=click.outcome.value).inc()
        return RecordedClick(click, decision)

    async def report_conversion(self, report: ConversionReport, ip: str | None) -> ConversionReported:
        """Put a validated postback on the log, keyed by its transaction_id (or coupon)."""
        conversion = ConversionReported(
            conversion_id=new_conversion_id(),
            transaction_id=report.transaction_id,
            coupon_code=report.coupon_code,
            event=report.event,
            amount=report.amount,
            currency=report.currency,
            order_id=report.order_id,
            reported_at=utc_now(),
            method="postback",
            ip=ip,
        )
        await self._publish(
            Envelope.wrap(conversion, producer=PRODUCER, occurred_at=conversion.reported_at)
        )
        CONVERSIONS.inc()
        return conversion

    async def _publish(self, envelope: Envelope[Any]) -> None:
        try:
            await asyncio.wait_for(self.publisher.publish(envelope), self.publish_timeout)
        except Exception as error:
            # Whatever kept the broker from acknowledging (unreachable, no leader, closed
            # producer, slower than a visitor can wait), the fact is not known to be on the
            # log and the caller must not be told otherwise. A send that completes after
            # the timeout leaves a recorded click nobody followed: harmless, unlike the
            # opposite.
            log.error("could not publish %s %s: %r", envelope.event_type, envelope.event_id, error)
            raise Unavailable("the event log is unavailable") from error
