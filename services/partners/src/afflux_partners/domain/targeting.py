"""The rules an offer's targeting must satisfy when an admin sets it: every value is one
the tracker can see on a visitor (a country code, a device, system or browser it names, a
host name, a real time zone), so a typo is refused here rather than silently matching
nobody. The tracker applies it per click (``afflux_tracking.domain.targeting``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from afflux_partners.domain.destinations import DOMAIN
from afflux_partners.domain.rules import RuleViolation
from afflux_partners.domain.values import (
    BROWSERS,
    DEVICE_TYPES,
    OPERATING_SYSTEMS,
    AllowDeny,
    DayParting,
    Targeting,
)

MAX_VALUES = 300
"""Per list: more than every country there is."""
_COUNTRY = re.compile(r"[A-Z]{2}")


def check_targeting(targeting: Targeting, field: str = "targeting") -> Targeting:
    """Each dimension's lists in canonical form, each value once."""
    return Targeting(
        countries=_lists(targeting.countries, f"{field}.countries", _country),
        devices=_lists(targeting.devices, f"{field}.devices", _one_of(DEVICE_TYPES)),
        operating_systems=_lists(targeting.operating_systems, f"{field}.operating_systems",
                                 _one_of(OPERATING_SYSTEMS)),
        browsers=_lists(targeting.browsers, f"{field}.browsers", _one_of(BROWSERS)),
        referrer_domains=_lists(targeting.referrer_domains, f"{field}.referrer_domains", _domain),
        day_parting=(check_day_parting(targeting.day_parting, f"{field}.day_parting")
                     if targeting.day_parting is not None else None),
    )


def check_day_parting(day_parting: DayParting, field: str) -> DayParting:
    """A time zone the tracker knows (IANA), weekdays 1 to 7 and hours 0 to 23, sorted."""
    try:
        ZoneInfo(day_parting.time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: "America", a directory
        raise RuleViolation(f"{field}.time_zone", f"{day_parting.time_zone!r} is not an IANA time zone "
                            "(like Europe/Paris)", "invalid_time_zone") from error
    return DayParting(day_parting.time_zone, _numbers(day_parting.weekdays, f"{field}.weekdays", 1, 7),
                      _numbers(day_parting.hours, f"{field}.hours", 0, 23))


def _lists(given: AllowDeny, field: str, canonical: Callable[[str, str], str]) -> AllowDeny:
    return AllowDeny(_values(given.allow, f"{field}.allow", canonical),
                     _values(given.deny, f"{field}.deny", canonical))


def _values(values: Iterable[str], field: str, canonical: Callable[[str, str], str]) -> tuple[str, ...]:
    listed = tuple(values)
    if len(listed) > MAX_VALUES:
        raise RuleViolation(field, f"at most {MAX_VALUES} values", "too_many")
    checked: list[str] = []
    for i, value in enumerate(listed):
        value = canonical(value, f"{field}.{i}")
        if value not in checked:
            checked.append(value)
    return tuple(checked)


def _country(value: str, field: str) -> str:
    code = value.strip().upper()
    if _COUNTRY.fullmatch(code) is None:
        raise RuleViolation(field, f"{value!r} is not an ISO 3166-1 alpha-2 country code (like FR)",
                            "invalid_country")
    return code


def _one_of(known: tuple[str, ...]) -> Callable[[str, str], str]:
    def canonical(value: str, field: str) -> str:
        name = value.strip().lower()
        if name not in known:
            raise RuleViolation(field, f"{value!r} is not one of {', '.join(known)}", "invalid_value")
        return name
    return canonical


def _domain(value: str, field: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if len(domain) > 253 or DOMAIN.fullmatch(domain) is None:
        raise RuleViolation(field, f"{value!r} is not a domain name (like news.example)", "invalid_domain")
    return domain


def _numbers(values: Iterable[int], field: str, low: int, high: int) -> tuple[int, ...]:
    checked: set[int] = set()
    for i, value in enumerate(values):
        if not low <= value <= high:
            raise RuleViolation(f"{field}.{i}", f"must be {low} to {high}", "invalid_value")
        checked.add(value)
    return tuple(sorted(checked))
