"""Where an offer's traffic may land besides its destination URL: the domains a link's
``url=`` may deep-link to, and the offer's landing pages.

Both are checked here, when an admin sets them; the tracker decides per click
(``afflux_tracking.domain.destinations``) and trusts nothing a visitor sends, so
these checks keep the configuration readable, not the redirect safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from afflux_partners.domain.rules import RuleViolation, check_http_url, check_name
from afflux_partners.domain.values import LandingPage

MAX_DEEP_LINK_DOMAINS = 50
MAX_LANDING_PAGES = 50
MAX_WEIGHT = 1000
"""Weights are relative: 0 to 1,000 leaves every share an admin means to give."""

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
"""A host name as DNS spells it (internationalised names in their ``xn--`` form)."""
_PAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_deep_link_domains(domains: Iterable[str], field: str = "deep_link_domains") -> tuple[str, ...]:
    """Bare host names, lower case, each once: ``shop.example`` allows ``shop.example``
    and every ``*.shop.example``. No scheme, port, path or wildcard, so what is allowed
    reads the same to the admin and to the tracker."""
    given = tuple(domains)
    if len(given) > MAX_DEEP_LINK_DOMAINS:
        raise RuleViolation(field, f"at most {MAX_DEEP_LINK_DOMAINS} domains", "too_many")
    checked: list[str] = []
    for i, value in enumerate(given):
        domain = value.strip().lower().rstrip(".")
        if len(domain) > 253 or DOMAIN.fullmatch(domain) is None:
            raise RuleViolation(f"{field}.{i}", f"{value!r} is not a domain name (like shop.example: no "
                                "scheme, port, path or wildcard)", "invalid_domain")
        if domain not in checked:
            checked.append(domain)
    return tuple(checked)


def check_landing_pages(pages: Iterable[LandingPage],
                        field: str = "landing_pages") -> tuple[LandingPage, ...]:
    """Pages with ids unique in the offer (a link names one in ``url_id=``), an http(s)
    URL each (macros as in the destination), and a weight of 0 to ``MAX_WEIGHT``."""
    given = tuple(pages)
    if len(given) > MAX_LANDING_PAGES:
        raise RuleViolation(field, f"at most {MAX_LANDING_PAGES} landing pages", "too_many")
    seen: set[str] = set()
    checked = []
    for i, page in enumerate(given):
        at = f"{field}.{i}"
        if _PAGE_ID.fullmatch(page.id) is None:
            raise RuleViolation(f"{at}.id", "must be 1 to 64 letters, digits, '_' or '-'", "invalid_id")
        if page.id in seen:
            raise RuleViolation(f"{at}.id", f"landing page {page.id!r} is listed twice",
                                "duplicate_landing_page")
        seen.add(page.id)
        if not 0 <= page.weight <= MAX_WEIGHT:
            raise RuleViolation(f"{at}.weight", f"must be 0 to {MAX_WEIGHT}", "invalid_weight")
        checked.append(LandingPage(page.id, check_name(page.name, f"{at}.name"),
                                   check_http_url(page.url, f"{at}.url"), page.weight))
    return tuple(checked)
