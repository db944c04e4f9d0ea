"""What a tracking request itself says about its visitor: a person, a bot, or a browser
fetching ahead of a visit that may never happen. Such clicks are recorded (no click is
lost) but never sent to the offer and never paid."""

from __future__ import annotations

import re
from collections.abc import Mapping

from afflux_contracts import ClickOutcome

_BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|embedly|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|scrapy|wget/|libwww|go-http-client|java/|okhttp|"
    r"pingdom|uptimerobot|statuscake|lighthouse|preview|monitor",
    re.IGNORECASE,
)
"""Signatures of crawlers, link-preview fetchers, monitors and scripted clients. ``curl``
and unnamed clients pass: advertisers test their links with them by hand."""

_PREFETCH_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


def is_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and _BOT_AGENTS.search(user_agent or "") is not None


def is_prefetch(method: str, headers: Mapping[str, str]) -> bool:
    """A ``HEAD`` probe, or a browser's speculative fetch (``Purpose: prefetch``,
    ``Sec-Purpose: prefetch;prerender``, Firefox's ``X-Moz: prefetch``, ``X-Purpose: preview``)."""
    if method == "HEAD":
        return True
    for name in _PREFETCH_HEADERS:
        value = headers.get(name)
        if value and ("prefetch" in value.lower() or "preview" in value.lower()):
            return True
    return False


def traffic_outcome(method: str, user_agent: str | None, headers: Mapping[str, str]) -> ClickOutcome:
    """``valid`` for a person's visit, else why the request is not one."""
    if is_bot(user_agent):
        return ClickOutcome.BOT
    if is_prefetch(method, headers):
        return ClickOutcome.PREFETCH
    return ClickOutcome.VALID
