"""The sign-up form's rules and the abuse limits, as pure functions.

A field that is wrong is named (``InvalidSignup.field``) so the API's 422 and the page
can say what to fix. The limits count the sign-ups made within a period, per client
address and per email address: past the limit the caller waits until the oldest one
leaves the window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

MAX_NAME = 200
MAX_URL = 2048
MAX_SOURCES = 10
MAX_SOURCE = 60
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIELDS = ("name", "email", "company", "website", "traffic_sources", "country", "accept_terms")


class InvalidSignup(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SignupForm:
    name: str
    email: str
    company: str | None
    website: str | None
    traffic_sources: tuple[str, ...]
    country: str | None

    def as_data(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "company": self.company, "website": self.website,
                "traffic_sources": list(self.traffic_sources), "country": self.country}


def _text(raw: Mapping[str, Any], field: str, required: bool = False, limit: int = MAX_NAME) -> str | None:
    value = raw.get(field)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise InvalidSignup(field, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidSignup(field, "must be text" if not isinstance(value, str) else "must not be blank")
    if len(value) > limit or _CONTROL.search(value):
        raise InvalidSignup(field, f"at most {limit} characters, no control characters")
    return value.strip()


def _sources(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    listed = value.split(",") if isinstance(value, str) else value
    if not isinstance(listed, list | tuple) or len(listed) > MAX_SOURCES:
        raise InvalidSignup("traffic_sources", f"a list of at most {MAX_SOURCES} sources")
    found: list[str] = []
    for index, source in enumerate(listed):
        if (not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE
                or _CONTROL.search(source)):
            raise InvalidSignup(f"traffic_sources.{index}", f"1 to {MAX_SOURCE} characters")
        if source.strip() not in found:
            found.append(source.strip())
    return tuple(found)


def checked_form(raw: Mapping[str, Any]) -> SignupForm:
    """The form, each field checked; the terms must be accepted (``accept_terms`` true)."""
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise InvalidSignup(unknown[0], "is not a field of the sign-up")
    name = _text(raw, "name", required=True)
    email = _text(raw, "email", required=True, limit=254)
    assert name is not None and email is not None
    if not _EMAIL.match(email):
        raise InvalidSignup("email", "is not an email address")
    website = _text(raw, "website", limit=MAX_URL)
    if website is not None:
        parts = urlsplit(website)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in website:
            raise InvalidSignup("website", "an absolute http:// or https:// address")
    country = _text(raw, "country", limit=2)
    if country is not None and not _COUNTRY.match(country):
        raise InvalidSignup("country", "an ISO 3166-1 alpha-2 code, e.g. DE")
    if raw.get("accept_terms") not in (True, "true", "on", "yes"):
        raise InvalidSignup("accept_terms", "the program's terms must be accepted")
    return SignupForm(name, email, _text(raw, "company"), website, _sources(raw.get("traffic_sources")),
                      country.upper() if country else None)


def wait_for(times: Sequence[datetime], limit: int, period: timedelta, now: datetime) -> int | None:
    """Seconds until one more sign-up is allowed (None: allowed now), given when the
    sign-ups within the period were made."""
    recent = sorted(t for t in times if t > now - period)
    if len(recent) < limit:
        return None
    return max(1, math.ceil((recent[-limit] + period - now).total_seconds()))
