"""The rules an offer, a partner or a relationship must satisfy before it is recorded.

Each check is named for what it checks, returns the value in its canonical form
and raises ``RuleViolation`` naming the offending field (``payout.amount``), so
the HTTP edge can tell the caller exactly what to fix. Checks run when a command
is given, never when stored events are replayed: tightening a rule later must
not make history unreadable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from decimal import Decimal
from urllib.parse import urlsplit

from afflux_partners.domain.values import Billing, ConversionSecurity, Terms

MAX_INTEGER_DIGITS = 12
MAX_DECIMAL_PLACES = 8
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 200
MAX_LABEL_LENGTH = 64
ATTRIBUTION_WINDOW_DAYS = range(1, 366)
MAX_ALLOWED_IPS = 100

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUPON_CODE = re.compile(r"^[A-Za-z0-9_-]+$")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


class RuleViolation(ValueError):
    """A command the domain refuses; ``field`` is the dotted path of what to fix."""

    def __init__(self, field: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


class StatusChangeRefused(Exception):
    """A status change the lifecycle does not allow: not a malformed request but a
    conflict with the aggregate's current state."""

    def __init__(self, what: str, current: str, requested: str, reason: str) -> None:
        super().__init__(f"{what} is {current}: cannot become {requested} ({reason})")
        self.current = current
        self.requested = requested


def check_name(value: str, field: str = "name") -> str:
    """A name people will read in reports: not blank, not a novel."""
    name = value.strip()
    if not name:
        raise RuleViolation(field, "must not be blank", "invalid_name")
    if len(name) > MAX_NAME_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_NAME_LENGTH} characters", "invalid_name")
    return name


def check_partner_type(value: str | None, field: str = "type") -> str | None:
    """A free label for the kind of partner (affiliate, creator, coupon_site...); blank is none."""
    kind = (value or "").strip()
    if len(kind) > MAX_LABEL_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_LABEL_LENGTH} characters", "invalid_type")
    return kind or None


def check_email(value: str, field: str = "email") -> str:
    """Roughly an address: something, an @, and a domain with a dot. Deliverability is
    proven by mail, not by regular expressions."""
    email = value.strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise RuleViolation(field, f"{value!r} is not an email address", "invalid_email")
    return email


def check_http_url(value: str, field: str) -> str:
    """An absolute http(s) URL. Macros such as ``{transaction_id}`` or ``{sub1}`` may
    appear in its path, query and fragment (the tracker fills them in, URL-encoded, at
    redirect time), never in its scheme or host: a partner's sub must not be able to
    choose where a visitor goes (an open redirect)."""
    if len(value) > MAX_URL_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_URL_LENGTH} characters", "invalid_url")
    if _SPACE_OR_CONTROL.search(value):
        raise RuleViolation(field, "must not contain spaces or control characters", "invalid_url")
    try:
        parts = urlsplit(value)
    except ValueError as error:
        raise RuleViolation(field, f"is not a URL ({error})", "invalid_url") from error
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise RuleViolation(field, "must be an absolute http:// or https:// URL", "invalid_url")
    if "{" in parts.netloc or "}" in parts.netloc:
        raise RuleViolation(field, "macros may not appear in the host: only in the path, query or "
                            "fragment", "invalid_url")
    return value


def check_currency(value: str, field: str = "currency") -> str:
    """An ISO 4217 code: three letters, kept upper-case."""
    code = value.strip().upper()
    if not _CURRENCY.match(code):
        raise RuleViolation(field, f"{value!r} is not an ISO 4217 currency code", "invalid_currency")
    return code


def check_amount(value: Decimal, field: str) -> Decimal:
    """A money amount or a percentage: finite, not negative, and of a sane size."""
    if not value.is_finite():
        raise RuleViolation(field, "must be a finite number", "invalid_amount")
    if value < 0:
        raise RuleViolation(field, "must not be negative", "invalid_amount")
    if value != 0 and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise RuleViolation(field, f"must be below 10^{MAX_INTEGER_DIGITS}", "invalid_amount")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise RuleViolation(field, f"must have at most {MAX_DECIMAL_PLACES} decimal places",
                            "invalid_amount")
    return value.copy_abs() if value == 0 else value  # no "-0" on the wire


def check_terms(terms: Terms, field: str) -> Terms:
    """Terms carry exactly what their type prices by: ``cpa`` and ``cpc`` an amount,
    ``cps`` a percent (at most 100), ``cpa_cps`` both. A value the type ignores is
    refused rather than silently dropped."""
    amount, percent = terms.amount, terms.percent
    if terms.type.takes_amount and amount is None:
        raise RuleViolation(f"{field}.amount", f"{terms.type} terms need an amount", "invalid_terms")
    if not terms.type.takes_amount and amount is not None:
        raise RuleViolation(f"{field}.amount", f"{terms.type} terms take no amount", "invalid_terms")
    if terms.type.takes_percent and percent is None:
        raise RuleViolation(f"{field}.percent", f"{terms.type} terms need a percent", "invalid_terms")
    if not terms.type.takes_percent and percent is not None:
        raise RuleViolation(f"{field}.percent", f"{terms.type} terms take no percent", "invalid_terms")
    if amount is not None:
        amount = check_amount(amount, f"{field}.amount")
    if percent is not None:
        percent = check_amount(percent, f"{field}.percent")
        if percent > 100:
            raise RuleViolation(f"{field}.percent", "must be at most 100", "invalid_amount")
    return Terms(type=terms.type, amount=amount, percent=percent)


def check_attribution_window(days: int, field: str = "attribution_window_days") -> int:
    """How long after a click a conversion may still be credited to it: 1 to 365 days."""
    if days not in ATTRIBUTION_WINDOW_DAYS:
        raise RuleViolation(field, "must be between 1 and 365 days", "invalid_attribution_window")
    return days


def check_billing(billing: Billing, field: str = "billing") -> Billing:
    return Billing(
        currency=check_currency(billing.currency, f"{field}.currency"),
        frequency=billing.frequency,
        minimum_payout=check_amount(billing.minimum_payout, f"{field}.minimum_payout"),
    )


def check_tags(tags: Iterable[str], field: str = "tags") -> tuple[str, ...]:
    """Labels: not blank, short, each kept once in the order given."""
    kept: dict[str, None] = {}
    for tag in tags:
        label = tag.strip()
        if not label or len(label) > MAX_LABEL_LENGTH:
            raise RuleViolation(field, f"a tag must be 1 to {MAX_LABEL_LENGTH} characters", "invalid_tag")
        kept.setdefault(label)
    return tuple(kept)


def check_coupon_codes(codes: Iterable[str], field: str = "coupon_codes") -> tuple[str, ...]:
    """Coupon codes a shopper types at checkout: letters, digits, ``-`` and ``_``.
    A code names one partner, so two codes differing only in case are one code."""
    kept: dict[str, str] = {}
    for code in codes:
        if not (0 < len(code) <= MAX_LABEL_LENGTH) or not _COUPON_CODE.match(code):
            raise RuleViolation(
                field, f"{code!r} is not a coupon code (1 to {MAX_LABEL_LENGTH} letters, digits, - or _)",
                "invalid_coupon_code",
            )
        if code.upper() in kept:
            raise RuleViolation(field, f"{code!r} is listed twice", "invalid_coupon_code")
        kept[code.upper()] = code
    return tuple(kept.values())


def check_conversion_security(security: ConversionSecurity,
                              field: str = "conversion_security") -> ConversionSecurity:
    """Allowed IPs are IP addresses or CIDR networks, kept in canonical form, at most
    ``MAX_ALLOWED_IPS`` of them."""
    if len(security.allowed_ips) > MAX_ALLOWED_IPS:
        raise RuleViolation(f"{field}.allowed_ips", f"at most {MAX_ALLOWED_IPS} entries", "invalid_ip")
    networks: dict[str, None] = {}
    for entry in security.allowed_ips:
        try:
            networks.setdefault(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise RuleViolation(f"{field}.allowed_ips", f"{entry[:60]!r} is not an IP address or "
                                "CIDR network", "invalid_ip") from None
    return ConversionSecurity(security.token_required, tuple(networks), security.pixel_allowed)
