"""Which postback a conversion's news goes to, whether it goes at all, and what is sent.

A partner sets a postback per relationship (offer) or one global postback for all its
offers; the relationship's wins where it has a URL. Each says GET or POST and whether
status changes (approved, rejected, reversed, adjusted) are sent too. An offer's event
may be set not to fire partner postbacks (``fires_partner_postback``): no news of its
conversions is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from afflux_postbacks.domain.macros import MACROS, fill

ATTRIBUTED = "attributed"
STATUS_CHANGED = "status_changed"


@dataclass(frozen=True)
class PostbackConfig:
    """A postback the partner set: its URL template, method and whether status changes go."""

    url: str
    method: str = "get"
    status_changes: bool = False


@dataclass(frozen=True)
class Request:
    """What is sent: the URL with macros filled, and for POST the JSON body."""

    url: str
    method: str
    body: str | None


def in_force(relationship: PostbackConfig | None, partner: PostbackConfig | None) -> PostbackConfig | None:
    """The relationship's postback if it has a URL, else the partner's global one."""
    if relationship is not None and relationship.url:
        return relationship
    if partner is not None and partner.url:
        return partner
    return None


def skip_reason(facts: Mapping[str, str | None], config: PostbackConfig | None,
                silent_events: frozenset[str]) -> str | None:
    """Why this news is not sent (None: it is). ``silent_events``: the offer's events that
    do not fire partner postbacks."""
    if config is None:
        return "neither the relationship nor the partner has a postback URL"
    event = facts.get("event")
    if event is not None and event in silent_events:
        return f"the offer's event {event!r} does not fire partner postbacks"
    if facts.get("kind") == STATUS_CHANGED and not config.status_changes:
        return "the partner's postback does not ask for status changes"
    return None


def request(config: PostbackConfig, facts: Mapping[str, str | None]) -> Request:
    """The partner's URL with the macros filled from the news's facts (the click's subs
    among them) and, for POST, a JSON object of every macro (null where there is no value;
    amounts as exact decimal strings)."""
    body = None
    if config.method == "post":
        body = json.dumps({name: facts.get(name) or None for name in MACROS}, separators=(",", ":"))
    return Request(fill(config.url, facts), config.method, body)
