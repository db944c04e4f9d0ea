"""A partner's postback URL, filled for one conversion, and how it is shown in the log.

Macros are ``{name}`` in the partner's template; each value is percent-encoded whole
(``safe=""``), so a sub value with ``&`` or ``=`` cannot add or change a parameter of
the partner's URL. A macro with no value (a sub the click did not carry) becomes
empty; a ``{word}`` that is not one of ours is left as the partner wrote it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

MACROS = ("transaction_id", "conversion_id", "event", "payout", "currency", "sub1", "sub2", "sub3",
          "sub4", "sub5", "status", "offer_id", "partner_id")
SUB_MACROS = ("sub1", "sub2", "sub3", "sub4", "sub5")
_MACRO = re.compile(r"\{(" + "|".join(MACROS) + r")\}")

SECRET_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "signature", "sig", "auth")
"""A query parameter whose name contains one of these has its value masked in the log."""
_SECRET = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
MASK = "***"


def fill(template: str, values: Mapping[str, str | None]) -> str:
    """``template`` with each known macro replaced by its URL-encoded value (empty if none)."""
    return _MACRO.sub(lambda match: quote(values.get(match.group(1)) or "", safe=""), template)


def masked(url: str) -> str:
    """``url`` as the delivery log shows it: secret-looking query values and any
    password in the authority replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else netloc
    query = "&".join(_masked_parameter(parameter) for parameter in parts.query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _masked_parameter(parameter: str) -> str:
    """One ``name=value`` of a query, its value masked if the name looks secret (the rest
    is kept exactly as written)."""
    name, equals, _ = parameter.partition("=")
    return f"{name}={MASK}" if equals and _secret(unquote_plus(name)) else parameter


def _secret(name: str) -> bool:
    return _SECRET.search(name) is not None


def idempotency_key(conversion_id: str, url: str) -> str:
    """The ``Idempotency-Key`` of a delivery: the same on every retry of it."""
    return hashlib.sha256(f"{conversion_id}\n{url}".encode()).hexdigest()[:32]
