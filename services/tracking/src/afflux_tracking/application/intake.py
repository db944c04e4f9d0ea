"""The hot path's use cases: record a click, an impression or a conversion report on the
log, and only then tell the caller where to go (effectively-once starts with acks=all).

Routing reads the in-memory view. A link the view refuses (unknown, or known but not
allowed) may have been changed a moment ago, so before a refusal is final the view
catches up with the partners log; a link handed out by the partners API therefore works
on its first click.

Every click and impression carries its ``visitor_id`` and address (``Visit``), whether a
browser followed a link or a page called ``POST /v1/clicks``: what they earn is
attribution's decision (unique per the offer's window, fraud rules, caps), made from
what is on the log. The edge's own marks (``unique``, ``over_cap``) are bounded per
instance: see ``domain/unique.py`` and ``domain/click_caps.py``.

A click the link allows is then checked against the offer's targeting with its visitor's
profile (``Profiles``: country by address, device, system and browser by user agent, all
recorded on the click), then against the hard caps, and a valid one lands where
``domain/destinations.py`` says (deep link, landing page, destination). A click the offer
cannot take may land on an offer of its fail traffic instead, and a smart link's click on
the offer it chooses (``application/placement.py``): either way it is one click, recorded
on the offer it lands on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from prometheus_client import Counter

from afflux_contracts import (
    ClickMethod,
    ClickOutcome,
    ClickRecorded,
    ConversionReported,
    Envelope,
    ImpressionRecorded,
    utc_now,
)
from afflux_tracking.application.placement import Placed, Placements
from afflux_tracking.domain.click_caps import ClickCounter
from afflux_tracking.domain.destinations import Landing, landing
from afflux_tracking.domain.links import Subs, click_macros, fill_macros, new_transaction_id
from afflux_tracking.domain.postbacks import ConversionReport, InvalidPostback, conversion_id_for
from afflux_tracking.domain.routing import (
    REROUTED,
    ClickDecision,
    LinkState,
    OfferRoute,
    SmartLinkRoute,
    UnknownLink,
    decide_click,
)
from afflux_tracking.domain.security import Refusal
from afflux_tracking.domain.targeting import UNKNOWN_VISITOR, VisitorProfile
from afflux_tracking.domain.unique import UniqueClicks
from afflux_tracking.domain.visitors import visitor_id

PRODUCER = "tracking"

log = logging.getLogger(__name__)

CLICKS = Counter("afflux_tracking_clicks_total", "Clicks recorded, by outcome", ["outcome"])
IMPRESSIONS = Counter("afflux_tracking_impressions_total", "Impressions recorded, by outcome", ["outcome"])
CLICKS_BY_OUTCOME = {outcome: CLICKS.labels(outcome=outcome.value) for outcome in ClickOutcome}
IMPRESSIONS_BY_OUTCOME = {outcome: IMPRESSIONS.labels(outcome=outcome.value) for outcome in ClickOutcome}
"""The labelled children, looked up once (``labels()`` costs microseconds a call)."""
CONVERSIONS = Counter("afflux_tracking_conversions_reported_total", "Conversion reports recorded",
                      ["method"])
REFUSED = Counter("afflux_tracking_reports_refused_total", "Conversion reports refused", ["reason"])


class Publishes(Protocol):
    """What intake needs of the plumbing ``Publisher``: put one envelope on the log and
    return only after the broker's acks=all acknowledgement."""

    async def publish(self, envelope: Envelope[Any]) -> Any: ...


class CatchesUp(Protocol):
    """What intake needs of the plumbing ``LogCatchUp`` on the partners log."""

    async def caught_up(self, timeout: float) -> bool: ...


class Routes(Protocol):
    """What intake reads of the routing view (``RoutingView``, in memory)."""

    def link(self, offer_id: str, partner_id: str) -> LinkState: ...

    def offer(self, offer_id: str) -> OfferRoute | None: ...

    def coupon_offers(self, code: str) -> list[str]: ...

    def smart_link(self, smart_link_id: str) -> SmartLinkRoute | None: ...

    def partner_known(self, partner_id: str) -> bool: ...


class Profiles(Protocol):
    """What intake needs to know of a visitor beyond its request: its country by address,
    its device, system and browser by user agent (``adapters/visitor_profiles.py``)."""

    def profile(self, ip: str | None, user_agent: str | None) -> VisitorProfile: ...


class UnknownVisitors:
    """``Profiles`` that know nothing: every visitor is of no known country or device."""

    @staticmethod
    def profile(ip: str | None, user_agent: str | None) -> VisitorProfile:
        return UNKNOWN_VISITOR


class Unavailable(Exception):
    """The log cannot be reached: nothing was recorded, the caller should retry (never a
    redirect for a click that is not on the log)."""


class ReportRefused(Exception):
    """A conversion report the offer's security refuses (401/403); nothing is recorded."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True)
class Visit:
    """One request on a tracking link, as the edge saw it."""

    offer_id: str
    """The offer the link names (on a smart link, ``/s/...``, the smart link's id)."""
    partner_id: str
    subs: Subs
    ip: str | None = None
    """The client's address (``afflux_plumbing.http.client_address``)."""
    user_agent: str | None = None
    referer: str | None = None
    traffic: ClickOutcome = ClickOutcome.VALID
    """What the request itself says: a person (``valid``), a bot or a prefetch."""
    cookie: str | None = None
    """The visitor cookie the request sent, if any."""
    method: ClickMethod = ClickMethod.REDIRECT
    deep_link: str | None = None
    """The link's ``url=``: where the partner asks to send the visitor (the offer decides)."""
    url_id: str | None = None
    """The link's ``url_id=``: the offer's landing page the partner asks for."""

    @cached_property
    def visitor_id(self) -> str:
        """Who the visitor is (``domain/visitors.py``): its cookie, else its IP and agent
        (a hash: worked out once per visit)."""
        return visitor_id(self.cookie, self.ip, self.user_agent)


@dataclass(frozen=True)
class RecordedClick:
    """A click now on the log, and where its visitor goes (``None``: nowhere)."""

    click: ClickRecorded
    decision: ClickDecision


@dataclass
class IntakeSettings:
    publish_timeout: float = 2.0
    catch_up_timeout: float = 3.0
    instances: int = 1
    """Tracking instances sharing each hard click cap (see ``domain/click_caps.py``)."""


@dataclass
class Intake:
    """Clicks, impressions and conversion reports onto ``afflux.tracking.v1``."""

    routes: Routes
    publisher: Publishes
    partners_log: CatchesUp
    settings: IntakeSettings = field(default_factory=IntakeSettings)
    profiles: Profiles = field(default_factory=UnknownVisitors)

    def __post_init__(self) -> None:
        self.unique = UniqueClicks()
        self.click_caps = ClickCounter(self.settings.instances)
        self.placements = Placements(self.routes, self.click_caps)

    async def record_click(self, visit: Visit) -> RecordedClick | UnknownLink:
        """Route the click by the view, put it on the log with its outcome, return it.
        A link to an unknown offer or partner is not a click and is not recorded. A click
        the offer cannot take goes to an offer of its fail traffic that takes it, if any
        (recorded there, naming where it came from), else to the offer's fallback."""
        routed = await self._route(visit)
        if isinstance(routed, UnknownLink):
            return routed
        link, decision = routed
        clicked_at = utc_now()
        profile = self.profiles.profile(visit.ip, visit.user_agent)
        decision = self.placements.admitted(visit, visit.offer_id, link, decision, profile, clicked_at)
        placed = Placed(visit.offer_id, link, decision)
        if decision.outcome in REROUTED and self.placements.reroutable(visit, link):
            placed = self.placements.rerouted(visit, placed, profile, clicked_at) or placed
        return await self._record(visit, placed, profile, clicked_at)

    async def record_smart_click(self, visit: Visit, smart_link_id: str) -> RecordedClick | UnknownLink:
        """A click on a smart link: recorded, valid, on the first of its offers that takes
        it (``domain/alternatives.py``); when none does (after catching up with the
        partners log, as for a refused link), recorded on its first offer with that
        offer's refusal, and the visitor goes to the smart link's fallback URL."""
        clicked_at = utc_now()
        profile = self.profiles.profile(visit.ip, visit.user_agent)
        placed = self.placements.smart(visit, smart_link_id, profile, clicked_at)
        if placed is None or (not placed.decision.valid and visit.traffic is ClickOutcome.VALID):
            # A refusal the view may have made stale (as ``_route``); a bot's is its own.
            if not await self.partners_log.caught_up(self.settings.catch_up_timeout):
                raise Unavailable("the partners log cannot be read to decide this smart link")
            placed = self.placements.smart(visit, smart_link_id, profile, clicked_at)
        if placed is None:
            smart_link = self.routes.smart_link(smart_link_id)
            return UnknownLink(offer_known=smart_link is not None,
                               partner_known=self.routes.partner_known(visit.partner_id), smart_link=True)
        return await self._record(visit, placed, profile, clicked_at)

    async def _record(self, visit: Visit, placed: Placed, profile: VisitorProfile,
                      clicked_at: datetime) -> RecordedClick:
        """Put the click on the log as ``placed`` says, and only then answer where it goes."""
        decision = placed.decision
        landed = self._landing(visit, placed)
        target = landed.url if landed is not None else decision.target
        transaction_id = new_transaction_id(placed.offer_id)
        redirect_url = None
        if target is not None:
            macros = click_macros(transaction_id, placed.offer_id, visit.partner_id, visit.subs)
            redirect_url = fill_macros(target, macros)
        refused = placed.refused
        click = ClickRecorded(
            transaction_id=transaction_id,
            offer_id=placed.offer_id,
            partner_id=visit.partner_id,
            clicked_at=clicked_at,
            outcome=decision.outcome,
            redirect_url=redirect_url,
            ip=visit.ip,
            user_agent=visit.user_agent,
            referer=visit.referer,
            unique=self._unique(visit, placed),
            method=visit.method,
            visitor_id=visit.visitor_id,
            landing_page_id=landed.landing_page_id if landed is not None else None,
            deep_link=landed is not None and landed.deep_link,
            reason=refused.reason if refused is not None else decision.reason,
            country=profile.country,
            device=profile.device,
            os=profile.os,
            browser=profile.browser,
            rerouted_from=visit.offer_id if refused is not None else None,
            rerouted_outcome=refused.outcome if refused is not None else None,
            smart_link_id=placed.smart_link_id,
            **visit.subs.as_dict(),
        )
        await self._publish(Envelope.wrap(click, producer=PRODUCER, occurred_at=click.clicked_at))
        CLICKS_BY_OUTCOME[click.outcome].inc()
        return RecordedClick(click, decision)

    async def record_impression(self, visit: Visit) -> ImpressionRecorded | UnknownLink:
        """An impression of a partner's creative, routed by the same rules as a click
        (targeting included; the caps count clicks only)."""
        routed = await self._route(visit)
        if isinstance(routed, UnknownLink):
            return routed
        link, decision = routed
        impressed_at = utc_now()
        profile = self.profiles.profile(visit.ip, visit.user_agent)
        decision = self.placements.targeted(visit, link, decision, profile, impressed_at)
        impression = ImpressionRecorded(
            impression_id=new_transaction_id(visit.offer_id), offer_id=visit.offer_id,
            partner_id=visit.partner_id, impressed_at=impressed_at, outcome=decision.outcome,
            ip=visit.ip, user_agent=visit.user_agent, referer=visit.referer, visitor_id=visit.visitor_id,
            reason=decision.reason, country=profile.country, device=profile.device, os=profile.os,
            browser=profile.browser, **visit.subs.as_dict(),
        )
        await self._publish(Envelope.wrap(impression, producer=PRODUCER, occurred_at=impression.impressed_at))
        IMPRESSIONS_BY_OUTCOME[impression.outcome].inc()
        return impression

    async def report_conversion(
        self, report: ConversionReport, ip: str | None, *, idempotency_key: str | None = None,
        pixel: bool = False,
    ) -> ConversionReported:
        """Check a validated report against its offer's security, then put it on the log,
        keyed by its transaction_id (or coupon), under an id that is the same for a retry."""
        offer = await self._reported_offer(report)
        reported_at = utc_now()
        refusal = self._refusal(offer, report, ip, pixel, reported_at)
        if refusal is not None:
            REFUSED.labels(reason=refusal.value).inc()
            raise ReportRefused(refusal)
        method = "pixel" if pixel else "postback"
        conversion = ConversionReported(
            conversion_id=conversion_id_for(report, offer.offer_id, idempotency_key),
            transaction_id=report.transaction_id,
            coupon_code=report.coupon_code,
            event=report.event,
            amount=report.amount,
            currency=report.currency,
            order_id=report.order_id,
            reported_at=reported_at,
            method=method,
            ip=ip,
            offer_id=offer.offer_id,
        )
        await self._publish(
            Envelope.wrap(conversion, producer=PRODUCER, occurred_at=conversion.reported_at)
        )
        CONVERSIONS.labels(method=method).inc()
        return conversion

    async def _route(self, visit: Visit) -> tuple[LinkState, ClickDecision] | UnknownLink:
        """The link as the view has it (read once per request) and where it sends the visit."""
        link = self.routes.link(visit.offer_id, visit.partner_id)
        decision = decide_click(link, visit.traffic)
        if isinstance(decision, ClickDecision) and decision.outcome is visit.traffic:
            return link, decision  # the link allows it: nothing the view could have missed matters
        if not await self.partners_log.caught_up(self.settings.catch_up_timeout):
            # The view may be stale (a restart still joining the log, a broker away): a
            # refusal now could wrongly turn away a link handed out a moment ago, and a
            # 404 is final. Nothing is recorded; the visitor retries.
            log.warning("cannot catch up with the partners log to decide %s/%s",
                        visit.offer_id, visit.partner_id)
            raise Unavailable("the partners log cannot be read to decide this link")
        link = self.routes.link(visit.offer_id, visit.partner_id)
        decision = decide_click(link, visit.traffic)
        return decision if isinstance(decision, UnknownLink) else (link, decision)

    @staticmethod
    def _landing(visit: Visit, placed: Placed) -> Landing | None:
        """The page a valid click lands on (``domain/destinations.py``); ``None`` for any
        other click, which goes to the fallback. A ``url_id`` names a page of the link's
        own offer: ignored on another one (rerouted, or chosen by a smart link)."""
        offer = placed.link.offer
        if not placed.decision.valid or offer is None:
            return None
        own = placed.offer_id == visit.offer_id and placed.smart_link_id is None
        url_id = visit.url_id if own else None
        return landing(offer.destination_url, offer.destinations, visit.deep_link, url_id,
                       random.random())  # a traffic split, not a secret: any uniform draw

    def _unique(self, visit: Visit, placed: Placed) -> bool:
        """The edge's mark: the visitor's first valid click on the link in its offer's window."""
        offer = placed.link.offer
        if not placed.decision.valid or offer is None:
            return False
        return self.unique.is_unique(visit.visitor_id, placed.offer_id, visit.partner_id, time.monotonic(),
                                     offer.unique_click_hours * 3600.0)

    async def _reported_offer(self, report: ConversionReport) -> OfferRoute:
        """The offer a report is checked against: the one its transaction_id or
        ``offer_id`` names, else the one its coupon code is registered on."""
        offer = self._offer_of(report)
        if offer is None:
            await self.partners_log.caught_up(self.settings.catch_up_timeout)
            offer = self._offer_of(report)
        if offer is not None:
            return offer
        if report.offer_id is not None:
            field = "transaction_id" if report.transaction_id else "offer_id"
            raise InvalidPostback(field, f"offer {report.offer_id!r} does not exist")
        if report.transaction_id is not None:
            raise InvalidPostback("offer_id", "this transaction_id does not name its offer: add offer_id")
        offers = self.routes.coupon_offers(report.coupon_code or "")
        if offers:
            raise InvalidPostback("offer_id", f"coupon code {report.coupon_code!r} is on several offers: "
                                  "add offer_id")
        raise InvalidPostback("coupon_code", f"coupon code {report.coupon_code!r} is not registered")

    def _offer_of(self, report: ConversionReport) -> OfferRoute | None:
        if report.offer_id is not None:
            return self.routes.offer(report.offer_id)
        if report.transaction_id is None and report.coupon_code is not None:
            offers = self.routes.coupon_offers(report.coupon_code)
            if len(offers) == 1:
                return self.routes.offer(offers[0])
        return None

    @staticmethod
    def _refusal(offer: OfferRoute, report: ConversionReport, ip: str | None, pixel: bool,
                 now: datetime) -> Refusal | None:
        if offer.security is None:
            return None  # an offer from before conversion security existed
        if pixel:
            return offer.security.check_pixel()
        return offer.security.check_postback(report.token, ip, now)

    async def _publish(self, envelope: Envelope[Any]) -> None:
        try:
            async with asyncio.timeout(self.settings.publish_timeout):  # no task per publish
                await self.publisher.publish(envelope)
        except Exception as error:
            # Whatever kept the broker from acknowledging (unreachable, no leader, closed
            # producer, slower than a visitor can wait), the fact is not known to be on the
            # log and the caller must not be told otherwise. A send that completes after
            # the timeout leaves a recorded click nobody followed: harmless, unlike the
            # opposite. A postback retried after the 503 gets the same conversion_id.
            log.error("could not publish %s %s: %r", envelope.event_type, envelope.event_id, error)
            raise Unavailable("the event log is unavailable") from error
