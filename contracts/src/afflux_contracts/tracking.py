"""Events of ``afflux.tracking.v1``: clicks and conversion reports, keyed by transaction_id."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import ClassVar

from afflux_contracts.event import Event
from afflux_contracts.topics import TRACKING
from afflux_contracts.values import Currency, DecimalString, UtcDatetime


class ClickOutcome(StrEnum):
    """Why a click went where it went. Only ``valid`` clicks can earn a conversion."""

    VALID = "valid"
    OFFER_PAUSED = "offer_paused"
    OFFER_INACTIVE = "offer_inactive"
    PARTNER_INACTIVE = "partner_inactive"
    PARTNER_NOT_APPROVED = "partner_not_approved"
    BOT = "bot"
    """The user agent is a known crawler, monitor or headless tool (not a person)."""
    PREFETCH = "prefetch"
    """A browser's speculative prefetch or a ``HEAD`` probe: nobody followed the link."""
    OVER_CAP = "over_cap"
    """The offer's (or the partner's) hard click cap for the period was reached."""
    TARGETING = "targeting"
    """The visitor fails the offer's targeting (``ClickRecorded.reason`` names the rule)."""


class ClickMethod(StrEnum):
    """How the click reached the tracker."""

    REDIRECT = "redirect"
    """A visitor followed the tracking link (``GET /c/...``) and was redirected."""
    DIRECT = "direct"
    """Direct linking: the advertiser's page registered the click (``POST /v1/clicks``)."""


class ClickRecorded(Event):
    topic: ClassVar = TRACKING

    transaction_id: str
    offer_id: str
    partner_id: str
    clicked_at: UtcDatetime
    outcome: ClickOutcome = ClickOutcome.VALID
    redirect_url: str | None = None
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    unique: bool = True
    """The first click of this visitor on this link within the unique-click period."""
    method: ClickMethod = ClickMethod.REDIRECT
    visitor_id: str | None = None
    """The tracker's visitor: its first-party cookie id, else ``derived_visitor_id(ip,
    user_agent)``. ``None`` on clicks recorded before it existed: derive it."""
    landing_page_id: str | None = None
    """The offer's landing page the visitor was sent to (named by ``url_id=`` or rotated),
    ``None`` for its destination URL, a deep link or the fallback."""
    deep_link: bool = False
    """The visitor went to the link's own ``url=`` (a host the offer allows)."""
    reason: str | None = None
    """For ``targeting`` (or a click rerouted from a ``targeting`` refusal): the rule the
    visitor failed (``countries``, ``devices``, ``operating_systems``, ``browsers``,
    ``referrer_domains``, ``day_parting``)."""
    country: str | None = None
    """The visitor's country (ISO 3166-1 alpha-2) by its address; ``None``: unknown."""
    device: str | None = None
    """The visitor's device by its user agent: ``desktop``, ``mobile``, ``tablet``, ``other``."""
    os: str | None = None
    """Its operating system: ``windows``, ``macos``, ``ios``, ``android``, ``linux``,
    ``chromeos``, ``other``."""
    browser: str | None = None
    """Its browser: ``chrome``, ``safari``, ``firefox``, ``edge``, ``opera``, ``samsung``,
    ``other``."""
    rerouted_from: str | None = None
    """The offer the link named, when that offer could not take the click and its fail
    traffic sent it to this one (``offer_id``): the click is this offer's, recorded once."""
    rerouted_outcome: ClickOutcome | None = None
    """Why ``rerouted_from`` could not take it (for ``targeting``, ``reason`` names the rule)."""
    smart_link_id: str | None = None
    """The smart link clicked (``/s/{smart_link_id}/{partner_id}``): ``offer_id`` is the
    offer it chose."""

    @property
    def valid(self) -> bool:
        return self.outcome is ClickOutcome.VALID

    def partition_key(self) -> str:
        return self.transaction_id


class ImpressionRecorded(Event):
    """A partner's creative was shown (``GET /i/{offer_id}/{partner_id}``, a 1x1 GIF)."""

    topic: ClassVar = TRACKING

    impression_id: str
    offer_id: str
    partner_id: str
    impressed_at: UtcDatetime
    outcome: ClickOutcome = ClickOutcome.VALID
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    visitor_id: str | None = None
    """As ``ClickRecorded.visitor_id``."""
    reason: str | None = None
    """As ``ClickRecorded.reason``: for ``targeting``, the rule the visitor failed."""
    country: str | None = None
    """As ``ClickRecorded``: the visitor's country, device, operating system and browser."""
    device: str | None = None
    os: str | None = None
    browser: str | None = None

    def partition_key(self) -> str:
        return self.impression_id


def derived_visitor_id(ip: str | None, user_agent: str | None) -> str:
    """The visitor id of a click or impression that brought no visitor cookie: 32 hex of
    the SHA-256 of its IP and user agent (as recorded). One rule, so that every tracker
    instance and every reader of an event without ``visitor_id`` derives the same one."""
    basis = f"{ip or ''}\x1f{user_agent or ''}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(basis).hexdigest()[:32]


class ConversionReported(Event):
    """An advertiser's report of a conversion, exactly as received and validated.

    ``conversion_id`` is a function of the report (offer, transaction_id or coupon,
    event, order_id) or of its ``Idempotency-Key``, so a retried postback carries the
    same one. A retry whose first attempt's acknowledgement was lost can put the same
    report on the log twice (different event_id): it is one conversion, and consumers
    apply a conversion_id once.
    """

    topic: ClassVar = TRACKING

    conversion_id: str
    transaction_id: str | None = None
    coupon_code: str | None = None
    event: str = "conversion"
    amount: DecimalString | None = None
    currency: Currency | None = None
    order_id: str | None = None
    reported_at: UtcDatetime
    method: str = "postback"
    """``postback`` (server to server, token checked) or ``pixel`` (browser, no token)."""
    ip: str | None = None
    offer_id: str | None = None
    """The offer the report was checked against (its token, IPs, pixel switch)."""

    def partition_key(self) -> str:
        key = self.transaction_id or self.coupon_code
        if key is None:
            raise ValueError(f"conversion {self.conversion_id} has no transaction_id or coupon")
        return key
