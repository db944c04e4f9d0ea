"""Which visitors an offer takes: by country, device, operating system, browser, referring
domain and time of week. A click that fails a rule is recorded ``targeting`` with the
rule's name as its reason and goes to the offer's fallback, like any refused click.

Every fact is passed in (the visitor's profile, its referrer, the instant), so the rule is
read here in one sitting; finding the country of an address and the device of a user
agent is the adapters' business (``adapters/visitor_profiles.py``). Rules are checked in
the order an advertiser reads them, and the first failed one is the reason.

A visitor whose value is unknown (an address in no country, a request without a
``Referer``) passes a deny list and fails an allow list: an offer that takes only
visitors from the US or from one site cannot know that this one is.

A partner's relationship with the offer may narrow it for that partner's clicks
(``link_targeting_failure``): the visitor must pass the offer's rules, then the
relationship's, so a relationship never admits a visitor the offer refuses. A rule of
the relationship's is named with ``relationship_`` before it (``relationship_countries``):
the advertiser reads which of the two to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import urlsplit

COUNTRIES = "countries"
DEVICES = "devices"
OPERATING_SYSTEMS = "operating_systems"
BROWSERS = "browsers"
REFERRER_DOMAINS = "referrer_domains"
DAY_PARTING = "day_parting"
"""The reasons a click fails targeting: the offer's rule that refused it."""
RELATIONSHIP = "relationship_"
"""Before the rule's name when the partner's relationship's targeting refused the click."""


@dataclass(frozen=True)
class VisitorProfile:
    """What the tracker reads about a visitor from its request: its country (ISO 3166-1
    alpha-2, by address) and its device, operating system and browser (by user agent:
    the values of the contract's ``DeviceType``, ``OperatingSystem`` and ``Browser``).
    ``None``: unknown."""

    country: str | None = None
    device: str | None = None
    os: str | None = None
    browser: str | None = None


UNKNOWN_VISITOR = VisitorProfile()


@dataclass(frozen=True)
class AllowDeny:
    """One dimension: a denied value fails, and so does any value ``allow`` (when it lists
    any) does not list."""

    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()

    def admits(self, value: str | None) -> bool:
        if value is not None and value in self.deny:
            return False
        return not self.allow or value in self.allow


@dataclass(frozen=True)
class Domains:
    """Referrer domains: a host matches a listed domain or any subdomain of it."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def admits(self, host: str | None) -> bool:
        if host is not None and _under(host, self.deny):
            return False
        return not self.allow or (host is not None and _under(host, self.allow))


def _under(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == domain or host.endswith(f".{domain}") for domain in domains)


@dataclass(frozen=True)
class DayParting:
    """The weekdays (1 Monday to 7) and hours (0 to 23) the offer takes traffic, in its
    time zone; empty: any."""

    time_zone: tzinfo
    weekdays: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()

    def admits(self, at: datetime) -> bool:
        local = at.astimezone(self.time_zone)
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return False
        return not self.hours or local.hour in self.hours


@dataclass(frozen=True)
class Targeting:
    countries: AllowDeny = AllowDeny()
    devices: AllowDeny = AllowDeny()
    operating_systems: AllowDeny = AllowDeny()
    browsers: AllowDeny = AllowDeny()
    referrer_domains: Domains = Domains()
    day_parting: DayParting | None = None


def targeting_failure(targeting: Targeting, visitor: VisitorProfile, referer: str | None,
                      at: datetime) -> str | None:
    """The first rule of ``targeting`` the visitor fails (its reason), or ``None``."""
    if not targeting.countries.admits(visitor.country):
        return COUNTRIES
    if not targeting.devices.admits(visitor.device):
        return DEVICES
    if not targeting.operating_systems.admits(visitor.os):
        return OPERATING_SYSTEMS
    if not targeting.browsers.admits(visitor.browser):
        return BROWSERS
    if not targeting.referrer_domains.admits(referrer_host(referer)):
        return REFERRER_DOMAINS
    if targeting.day_parting is not None and not targeting.day_parting.admits(at):
        return DAY_PARTING
    return None


def link_targeting_failure(offer: Targeting | None, relationship: Targeting | None,
                           visitor: VisitorProfile, referer: str | None, at: datetime) -> str | None:
    """The first rule the visitor fails of the offer's targeting, else of the partner's
    relationship's (its name after ``relationship_``); ``None`` (either absent: no rule)
    when it passes both."""
    failed = targeting_failure(offer, visitor, referer, at) if offer is not None else None
    if failed is not None or relationship is None:
        return failed
    narrowed = targeting_failure(relationship, visitor, referer, at)
    return None if narrowed is None else RELATIONSHIP + narrowed


def referrer_host(referer: str | None) -> str | None:
    """The host of a ``Referer`` header, lower case; ``None`` for none or one without a host."""
    if not referer:
        return None
    try:
        host = urlsplit(referer).hostname
    except ValueError:
        return None
    return host.removesuffix(".") if host else None
