"""Dead letters told to staff: at most one digest per topic per period.

Records that reach a ``<topic>.dlq`` are counted as they come; a digest of what was
counted goes out when there is something to tell and the topic's last digest is at
least a period old (an hour by default). So a burst of a thousand dead letters is one
mail, and a steady trickle one mail an hour, each saying how many and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

MAX_REASONS = 5
"""Distinct reasons a digest lists (the most frequent first)."""


def digest_due(pending: int, last_digest_at: datetime | None, now: datetime, every: timedelta) -> bool:
    return pending > 0 and (last_digest_at is None or now - last_digest_at >= every)


def reason_of(header: str) -> str:
    """A dead letter's reason as a digest groups it: its first line, without the details
    that differ per record (offsets, ids after a colon are kept to 120 characters)."""
    first = header.strip().splitlines()[0] if header.strip() else "no reason given"
    return first[:120]


def merged(counts: Mapping[str, int], reasons: Iterable[str]) -> dict[str, int]:
    """``counts`` with ``reasons`` added, kept to the most frequent few (and the rest as
    ``other``), so a digest's row never grows without end."""
    total = Counter(counts)
    total.update(reasons)
    top = total.most_common(MAX_REASONS)
    rest = sum(total.values()) - sum(count for _, count in top)
    kept = dict(top)
    if rest:
        kept["other"] = kept.get("other", 0) + rest
    return kept
