"""Mail addresses: which are sendable, and when two are the same recipient.

Partners keep their email and contacts as free text (the partners API does not check
them), so a partner's recipients are the addresses that could be sent to: one ``@``
between a non-empty local part and a domain with a dot (or ``localhost``), no
whitespace or control character (a line break in an address would be a header of its
own). Two addresses that differ only in case or surrounding space are one recipient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ADDRESS = re.compile(r"^[^@\s\x00-\x1f\x7f<>,;\"]{1,64}@"
                      r"(?:[A-Za-z0-9-]+\.)*(?:[A-Za-z0-9-]+\.[A-Za-z0-9-]+|localhost)$")
MAX_LENGTH = 254


def sendable(address: str) -> bool:
    text = address.strip()
    return len(text) <= MAX_LENGTH and bool(_ADDRESS.match(text))


def same_recipient(address: str) -> str:
    """The form an address is compared, keyed and hashed in (trimmed, lowercased)."""
    return address.strip().lower()


def distinct_sendable(addresses: Iterable[str]) -> list[str]:
    """The sendable ones, each recipient once, in the order given (trimmed)."""
    seen: set[str] = set()
    kept: list[str] = []
    for address in addresses:
        key = same_recipient(address)
        if key not in seen and sendable(address):
            seen.add(key)
            kept.append(address.strip())
    return kept
