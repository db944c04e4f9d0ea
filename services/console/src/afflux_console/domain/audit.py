"""What an event of the log is about, for the audit trail: its subjects.

An event names the objects it concerns by their ids; the audit lists it under each, the
most specific first (a conversion before its offer and partner, a statement before its
partner), so ``?subject=`` finds a partner's whole history and an entry shows what was
acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUBJECT_FIELDS = (
    "conversion_id",
    "statement_id",
    "adjustment_id",
    "token_id",
    "session_id",
    "creative_id",
    "smart_link_id",
    "offer_id",
    "partner_id",
    "key_id",
    "user_id",
    "delivery_id",
    "notification_id",
)
"""Id fields, most specific first."""


def subjects_of(payload: Mapping[str, Any]) -> list[str]:
    """The ids an event names, most specific first (its subject is the first)."""
    found: list[str] = []
    for name in SUBJECT_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value and value not in found:
            found.append(value)
    return found
