"""Where a valid click lands: the link's own deep link (``url=``) when the offer allows its
host, else the landing page the link names (``url_id=``), else one of the offer's
landing pages rotated by weight, else the offer's destination URL.

A deep link is a URL the *visitor's request* carries, so it is the one place a stranger
could choose where the tracker sends people (an open redirect, the phisher's favourite
tool). It is therefore parsed strictly and allowed only when its host is exactly one of
the offer's deep-link domains or a subdomain of one: anything a browser could read
differently from this parser (a backslash, a user name before ``@``, white space or
control characters, a host that is not a plain DNS name) is refused outright, and a
refused deep link is as if the link had none (never an error: the visitor still lands).
Macros in the chosen page are filled exactly as in the destination
(``links.fill_macros``, values fully percent-encoded, so a sub can never reach the host).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from urllib.parse import urlsplit

MAX_DEEP_LINK = 2048
"""A longer ``url=`` is refused (the offer's pages are bounded the same way)."""

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
"""A DNS host name (internationalised ones in their ``xn--`` form), lower case."""
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
"""White space and control characters (browsers drop some of them silently) and the
backslash (browsers read it as ``/`` in http(s) URLs; Python's parser does not)."""


@dataclass(frozen=True)
class LandingPage:
    """One of the offer's pages: ``url`` is a template with the destination's macros."""

    id: str
    url: str
    weight: int = 1


@dataclass(frozen=True)
class Destinations:
    """An offer's deep-link domains and landing pages, with the rotation's running
    weights worked out once per offer change rather than per click."""

    deep_link_domains: tuple[str, ...] = ()
    landing_pages: tuple[LandingPage, ...] = ()
    _by_id: dict[str, LandingPage] = field(init=False, repr=False, compare=False)
    _rotated: tuple[LandingPage, ...] = field(init=False, repr=False, compare=False)
    _cumulative: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rotated = tuple(page for page in self.landing_pages if page.weight > 0)
        object.__setattr__(self, "_by_id", {page.id: page for page in self.landing_pages})
        object.__setattr__(self, "_rotated", rotated)
        object.__setattr__(self, "_cumulative", tuple(accumulate(page.weight for page in rotated)))

    def page(self, page_id: str) -> LandingPage | None:
        return self._by_id.get(page_id)

    def rotated(self, draw: float) -> LandingPage | None:
        """The page a uniform ``draw`` in [0, 1) picks, each page with the share of its
        weight among the pages of positive weight; ``None`` when there are none."""
        if not self._rotated:
            return None
        at = bisect_right(self._cumulative, draw * self._cumulative[-1])
        return self._rotated[min(at, len(self._rotated) - 1)]


NO_DESTINATIONS = Destinations()


@dataclass(frozen=True)
class Landing:
    """The page a valid click goes to (a URL template), and which one it was."""

    url: str
    landing_page_id: str | None = None
    deep_link: bool = False


def landing(destination_url: str, destinations: Destinations, deep_link: str | None, url_id: str | None,
            draw: float) -> Landing:
    """Where a valid click lands, from the offer's pages and what the link asks for;
    ``draw`` is a uniform random number in [0, 1) for the rotation."""
    if deep_link is not None and allowed_deep_link(deep_link, destinations.deep_link_domains):
        return Landing(deep_link, deep_link=True)
    named = destinations.page(url_id) if url_id is not None else None
    if named is not None:
        return Landing(named.url, named.id)
    rotated = destinations.rotated(draw)
    if rotated is not None:
        return Landing(rotated.url, rotated.id)
    return Landing(destination_url)


def allowed_deep_link(url: str, domains: tuple[str, ...]) -> bool:
    """Whether a visitor may be sent to ``url``: an absolute http(s) URL with no user
    information whose host is one of ``domains`` or a subdomain of one."""
    host = deep_link_host(url)
    return host is not None and any(host == domain or host.endswith(f".{domain}") for domain in domains)


def deep_link_host(url: str) -> str | None:
    """The host ``url`` leads to, if it is a URL this module can read exactly as a browser
    would; else ``None``."""
    if not url or len(url) > MAX_DEEP_LINK or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    host, _, port = parts.netloc.partition(":")
    host = host.lower().removesuffix(".")
    if port and not (port.isdigit() and len(port) <= 5 and port.isascii()):
        return None
    return host if _HOST.fullmatch(host) else None
