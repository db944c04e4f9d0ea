"""Tracking-link macros: the click's identity written into the URL it is sent to, so
the advertiser's site can keep the transaction_id and hand it back in its postback."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote
from uuid import uuid4

SUB_COUNT = 5
SUB_NAMES = tuple(f"sub{n}" for n in range(1, SUB_COUNT + 1))
MACRO_NAMES = ("transaction_id", "offer_id", "partner_id", *SUB_NAMES)

_MACRO = re.compile(r"\{(" + "|".join(MACRO_NAMES) + r")\}")

# What may stay as-is in a Location header: RFC 3986 reserved and unreserved characters
# and existing percent-escapes. Anything else (spaces, non-ASCII, braces of macros we
# do not know) is percent-encoded so the header is valid and equals the recorded URL.
_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%"


_TRANSACTION_ID = re.compile(r"([0-9a-fA-F]{32})(?:-([A-Za-z0-9_-]{1,64}))?")


def new_transaction_id(offer_id: str) -> str:
    """A click's unique id: 32 random lowercase hex characters, then ``-`` and the offer's
    id, so a postback that carries only the transaction_id names the offer whose token
    and allowed IPs it must satisfy. An offer id that cannot travel that way (not
    ``[A-Za-z0-9_-]{1,64}``) leaves the bare 32 hex: its postbacks name ``offer_id``."""
    random_part = uuid4().hex
    return f"{random_part}-{offer_id}" if _travels(offer_id) else random_part


@lru_cache(maxsize=4096)
def _travels(offer_id: str) -> bool:
    """Whether ``offer_id`` may follow the random part of a transaction_id (asked once per offer)."""
    return _TRANSACTION_ID.fullmatch(f"{'0' * 32}-{offer_id}") is not None


def parse_transaction_id(value: str) -> tuple[str, str | None] | None:
    """A transaction_id in canonical form (hex part lower-cased) and the offer it names,
    or ``None`` if it is not one this tracker issues."""
    match = _TRANSACTION_ID.fullmatch(value)
    if match is None:
        return None
    random_part, offer_id = match.group(1).lower(), match.group(2)
    return (f"{random_part}-{offer_id}" if offer_id else random_part), offer_id


@dataclass(frozen=True)
class Subs:
    """The partner's own parameters sub1..sub5 passed through a click (``None`` = absent)."""

    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in SUB_NAMES}


def click_macros(transaction_id: str, offer_id: str, partner_id: str, subs: Subs) -> dict[str, str]:
    """The value of every macro for one click; a missing sub fills in as empty."""
    values = {"transaction_id": transaction_id, "offer_id": offer_id, "partner_id": partner_id}
    values.update({name: value or "" for name, value in subs.as_dict().items()})
    return values


def fill_macros(template: str, values: Mapping[str, str]) -> str:
    """Replace each known ``{macro}`` with its URL-encoded value, in one pass, and make
    the result fit a Location header.

    Values are encoded with nothing left safe (``&``, ``/``, ``=`` and spaces included),
    so a partner's sub can never add a query parameter or change the path.
    """
    filled = _MACRO.sub(lambda match: quote(values.get(match.group(1), ""), safe=""), template)
    return quote(filled, safe=_LOCATION_SAFE)
