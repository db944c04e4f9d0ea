"""What a tracking request itself says about its visitor: who it is (``visitor_id``), and
whether it is a person, a bot, or a browser fetching ahead of a visit that may never
happen. Bots and prefetches are recorded (no click is lost) but never sent to the offer
and never paid.

A visitor is its first-party cookie (``afx_v``), else its IP address and user agent
(``derived_visitor_id``, the contract's one rule, which readers of old events apply
too). A visitor without the cookie is given the cookie *of that same id*: its next click,
cookie and all, is the same visitor, and a client that drops cookies (a ``curl`` loop)
stays one visitor per IP and user agent. What a visitor id cannot stop, a client that
invents cookies or user agents, is what the offer's per-IP limits are for (attribution
applies them, with the address from ``AFFLUX_TRUSTED_PROXIES``' rule).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from afflux_contracts import ClickOutcome, derived_visitor_id

_VISITOR_COOKIE = re.compile(r"[0-9a-f]{32}")
"""What the tracker sets: anything else a client sends as ``afx_v`` is not a visitor id."""


def visitor_id(cookie: str | None, ip: str | None, user_agent: str | None) -> str:
    """The visitor a request is: its cookie's id if it is one the tracker sets, else
    the id of its IP address and user agent."""
    if cookie is not None and _VISITOR_COOKIE.fullmatch(cookie):
        return cookie
    return derived_visitor_id(ip, user_agent)


def is_visitor_cookie(value: str) -> bool:
    return _VISITOR_COOKIE.fullmatch(value) is not None

_BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|embedly|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|scrapy|wget/|libwww|go-http-client|java/|okhttp|"
    r"pingdom|uptimerobot|statuscake|lighthouse|preview|monitor",
    re.IGNORECASE,
)
"""Signatures of crawlers, link-preview fetchers, monitors and scripted clients. ``curl``
and unnamed clients pass: advertisers test their links with them by hand."""

_PREFETCH_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


KNOWN_AGENTS = 4096
"""User agents whose verdict is remembered: traffic comes from a few thousand distinct
agents, and the signatures' search costs ~30 µs an agent (more than the rest of a
click's routing). A client inventing agents only ever pays the search."""


def is_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and _bot_agent(user_agent or "")


@lru_cache(maxsize=KNOWN_AGENTS)
def _bot_agent(user_agent: str) -> bool:
    return _BOT_AGENTS.search(user_agent) is not None


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
