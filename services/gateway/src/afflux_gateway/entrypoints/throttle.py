"""Slowing down guessing without locking anyone out: failed key checks counted per
*source* (the client address and the presented key's prefix) in a sliding window.

Past ``limit`` failures within ``period`` seconds a source's failed attempts are
answered 429 with ``Retry-After`` instead of 401. A valid key is never refused because
of failures: the key is checked first, and a right one always gets through. So ten bad
keys from behind one load balancer (one address for everyone) throttle only those
guesses, and a partner typing its key wrong sees its own 401s, not others' 429s.

Why per prefix as well as per address: behind a proxy every caller has the proxy's
address; the prefix (``afx_live_`` and the key's first characters, public in the
partner's key list) splits the callers a guesser cannot impersonate cheaply.

Held in memory per process (a restart forgets, which only helps a guesser by one
window); the table is bounded, oldest sources first out.
"""

from __future__ import annotations

from afflux_plumbing.throttle import FailureThrottle

__all__ = ["PREFIX_CHARS", "FailureThrottle", "source_of"]

PREFIX_CHARS = 12
"""As much of a presented key as names its source (the prefix the partners log keeps)."""


def source_of(address: str, presented: str | None) -> str:
    """The throttle's bucket for a key presented from an address."""
    prefix = (presented or "")[:PREFIX_CHARS]
    return f"{address}|{prefix.encode('unicode_escape').decode()}"
