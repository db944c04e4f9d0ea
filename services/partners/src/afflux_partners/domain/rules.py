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

from afflux_partners.domain.values import (
    BLOCKABLE_SUBS,
    CONVERSION_TYPES,
    Billing,
    Cap,
    Contact,
    ConversionSecurity,
    FraudSettings,
    OfferEvent,
    PartnerPostback,
    RelationshipEvent,
    Terms,
    Tier,
)

MAX_INTEGER_DIGITS = 12
MAX_DECIMAL_PLACES = 8
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 200
MAX_LABEL_LENGTH = 64
ATTRIBUTION_WINDOW_DAYS = range(1, 366)
MAX_ALLOWED_IPS = 100
MAX_LIST = 20
"""Events, caps, tiers or contacts of one offer, relationship or partner."""
MAX_BLOCKED = 1000
MAX_SUB_LENGTH = 255
MAX_SECONDS_TO_CONVERT = 30 * 86400
MAX_CONVERSIONS_PER_IP = 1_000_000
MAX_PER_DAY = 10_000_000
"""A per-day click or impression limit larger than this limits nothing."""
MAX_TIER_THRESHOLD = 1_000_000_000
UNIQUE_CLICK_HOURS = range(1, 721)
"""A visitor's clicks on an offer count once within 1 hour to 30 days (what attribution
remembers per visitor grows with the window)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUPON_CODE = re.compile(r"^[A-Za-z0-9_-]+$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
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


class Conflict(Exception):
    """A well-formed command the aggregate's current state refuses (409): editing a
    deleted offer, a key for a rejected partner, an application already declined."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def check_name(value: str, field: str = "name") -> str:
    """A name people will read in reports: not blank, not a novel."""
    name = value.strip()
    if not name:
        raise RuleViolation(field, "must not be blank", "invalid_name")
    if len(name) > MAX_NAME_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_NAME_LENGTH} characters", "invalid_name")
    if _has_control(name):
        raise RuleViolation(field, "must not contain control characters", "invalid_name")
    return name


def check_partner_type(value: str | None, field: str = "type") -> str | None:
    """A free label for the kind of partner (affiliate, creator, coupon_site...); blank is none."""
    return check_label(value, field, "invalid_type")


def check_email(value: str, field: str = "email") -> str:
    """Roughly an address: something, an @, and a domain with a dot. Deliverability is
    proven by mail, not by regular expressions."""
    email = value.strip()
    if len(email) > 254 or not _EMAIL.match(email) or _has_control(email):
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


def check_bound(value: Decimal | None, field: str) -> Decimal | None:
    """A maximum sale amount or payout per conversion: above zero, or none."""
    if value is None:
        return None
    bound = check_amount(value, field)
    if bound <= 0:
        raise RuleViolation(field, "must be above 0 (leave it out for no bound)", "invalid_amount")
    return bound


def check_unique_click_hours(hours: int, field: str = "unique_click_hours") -> int:
    if hours not in UNIQUE_CLICK_HOURS:
        shortest, longest = UNIQUE_CLICK_HOURS.start, UNIQUE_CLICK_HOURS.stop - 1
        raise RuleViolation(field, f"must be {shortest} to {longest} hours", "invalid_unique_click_hours")
    return hours


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
        method=check_label(billing.method, f"{field}.method"),
        conversion=billing.conversion,
    )


def check_label(value: str | None, field: str, code: str = "invalid_value") -> str | None:
    """A short free label (a payment method, a contact's role); blank is none."""
    label = (value or "").strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_LABEL_LENGTH} characters", code)
    if _has_control(label):
        raise RuleViolation(field, "must not contain control characters", code)
    return label or None


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def check_manager(value: str | None, field: str = "manager") -> str | None:
    """The account manager looking after the partner (a name or an email); blank is none."""
    manager = (value or "").strip()
    if len(manager) > MAX_NAME_LENGTH:
        raise RuleViolation(field, f"must be at most {MAX_NAME_LENGTH} characters", "invalid_manager")
    if _has_control(manager):
        raise RuleViolation(field, "must not contain control characters", "invalid_manager")
    return manager or None


def check_contacts(contacts: Iterable[Contact], field: str = "contacts") -> tuple[Contact, ...]:
    checked = tuple(
        Contact(name=check_name(contact.name, f"{field}.{i}.name"),
                email=check_email(contact.email, f"{field}.{i}.email"),
                role=check_label(contact.role, f"{field}.{i}.role"))
        for i, contact in enumerate(contacts)
    )
    if len(checked) > MAX_LIST:
        raise RuleViolation(field, f"at most {MAX_LIST} contacts", "too_many")
    return checked


def check_partner_postback(postback: PartnerPostback, field: str = "postback") -> PartnerPostback:
    return PartnerPostback(url=check_http_url(postback.url, f"{field}.url"), method=postback.method,
                           status_changes=postback.status_changes)


def check_event_name(name: str, field: str) -> str:
    """What an advertiser's postback sends as ``event=``: letters, digits, ``_ . -``."""
    if not _EVENT_NAME.match(name):
        raise RuleViolation(field, f"{name[:80]!r} is not an event name (1 to 64 letters, digits, _ . or -)",
                            "invalid_event")
    return name


def check_conversion_terms(terms: Terms, field: str) -> Terms:
    """Terms that price a conversion: CPA, CPS or CPA+CPS (clicks and impressions are
    priced by the offer's own CPC or CPM payout)."""
    if terms.type not in CONVERSION_TYPES:
        raise RuleViolation(f"{field}.type", f"a conversion is priced cpa, cps or cpa_cps, not {terms.type}",
                            "invalid_terms")
    return check_terms(terms, field)


def _at_most(items: tuple[object, ...], field: str, what: str, limit: int = MAX_LIST) -> None:
    if len(items) > limit:
        raise RuleViolation(field, f"at most {limit} {what}", "too_many")


def check_offer_events(events: Iterable[OfferEvent], field: str = "events") -> tuple[OfferEvent, ...]:
    """An offer's events: unique names, each priced per conversion. None given: the offer
    has its one default ``conversion`` event, priced with its payout and revenue."""
    given = tuple(events)
    _at_most(given, field, "events")
    seen: set[str] = set()
    checked = []
    for i, event in enumerate(given):
        at = f"{field}.{i}"
        name = check_event_name(event.name, f"{at}.name")
        if name in seen:
            raise RuleViolation(f"{at}.name", f"event {name!r} is listed twice", "duplicate_event")
        seen.add(name)
        checked.append(OfferEvent(
            name=name, payout=check_conversion_terms(event.payout, f"{at}.payout"),
            revenue=check_conversion_terms(event.revenue, f"{at}.revenue") if event.revenue else None,
            allow_duplicates=event.allow_duplicates, requires_approval=event.requires_approval,
            fires_partner_postback=event.fires_partner_postback,
            max_sale_amount=check_bound(event.max_sale_amount, f"{at}.max_sale_amount"),
            max_payout=check_bound(event.max_payout, f"{at}.max_payout"),
        ))
    return tuple(checked)


def check_caps(caps: Iterable[Cap], field: str = "caps") -> tuple[Cap, ...]:
    """Limits above zero (whole for clicks and conversions), one per metric, period,
    scope and hardness: two hard daily conversion caps would leave "which one?" open."""
    given = tuple(caps)
    _at_most(given, field, "caps")
    seen: set[tuple[object, ...]] = set()
    for i, cap in enumerate(given):
        at = f"{field}.{i}"
        limit = check_amount(cap.limit, f"{at}.limit")
        if limit <= 0:
            raise RuleViolation(f"{at}.limit", "must be above 0", "invalid_cap")
        if cap.metric.counts and limit != limit.to_integral_value():
            raise RuleViolation(f"{at}.limit", f"a {cap.metric} cap counts: a whole number", "invalid_cap")
        key = (cap.metric, cap.period, cap.per_partner, cap.hard)
        if key in seen:
            raise RuleViolation(at, f"a {'hard' if cap.hard else 'soft'} {cap.metric} cap per {cap.period} "
                                "is listed twice for the same scope", "duplicate_cap")
        seen.add(key)
    return given


def check_tiers(tiers: Iterable[Tier], field: str = "tiers") -> tuple[Tier, ...]:
    """Thresholds from 1 up, each once; kept in ascending order of threshold."""
    given = tuple(tiers)
    _at_most(given, field, "tiers")
    seen: set[int] = set()
    checked = []
    for i, tier in enumerate(given):
        at = f"{field}.{i}"
        if not 1 <= tier.min_conversions <= MAX_TIER_THRESHOLD:
            raise RuleViolation(f"{at}.min_conversions", f"must be 1 to {MAX_TIER_THRESHOLD}", "invalid_tier")
        if tier.min_conversions in seen:
            raise RuleViolation(f"{at}.min_conversions", f"two tiers start at {tier.min_conversions}",
                                "duplicate_tier")
        seen.add(tier.min_conversions)
        checked.append(Tier(tier.min_conversions, check_conversion_terms(tier.payout, f"{at}.payout")))
    return tuple(sorted(checked, key=lambda tier: tier.min_conversions))


def check_networks(entries: Iterable[str], field: str, limit: int) -> tuple[str, ...]:
    """IP addresses or CIDR networks, canonical, each once, at most ``limit``."""
    given = tuple(entries)
    if len(given) > limit:
        raise RuleViolation(field, f"at most {limit} entries", "invalid_ip")
    networks: dict[str, None] = {}
    for entry in given:
        try:
            networks.setdefault(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise RuleViolation(field, f"{entry[:60]!r} is not an IP address or CIDR network",
                                "invalid_ip") from None
    return tuple(networks)


def _per_day(value: int | None, field: str, limit: int) -> int | None:
    if value is not None and not 1 <= value <= limit:
        raise RuleViolation(field, f"must be 1 to {limit}", "invalid_fraud")
    return value


def check_blocked_values(values: Iterable[str], field: str) -> tuple[str, ...]:
    """A deny list of sub values: each 1 to ``MAX_SUB_LENGTH`` characters, kept once."""
    given = tuple(values)
    if len(given) > MAX_BLOCKED:
        raise RuleViolation(field, f"at most {MAX_BLOCKED} entries", "invalid_fraud")
    kept: dict[str, None] = {}
    for value in given:
        if not 0 < len(value) <= MAX_SUB_LENGTH or _has_control(value):
            raise RuleViolation(field, f"{value[:60]!r}: 1 to {MAX_SUB_LENGTH} characters, "
                                "no control characters", "invalid_fraud")
        kept.setdefault(value)
    return tuple(kept)


def check_blocked_subs(blocked: Iterable[tuple[str, Iterable[str]]],
                       field: str = "fraud.blocked_subs") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Deny lists of sub2..sub5 (sub1's is ``blocked_sub1``), in sub order; empty lists dropped."""
    lists: dict[str, tuple[str, ...]] = {}
    for name, values in blocked:
        if name not in BLOCKABLE_SUBS:
            raise RuleViolation(f"{field}.{name[:20]}", f"only {', '.join(BLOCKABLE_SUBS)} have deny lists "
                                "here (sub1: blocked_sub1)", "invalid_fraud")
        lists[name] = check_blocked_values(values, f"{field}.{name}")
    return tuple((name, lists[name]) for name in BLOCKABLE_SUBS if lists.get(name))


def check_fraud(fraud: FraudSettings, field: str = "fraud") -> FraudSettings:
    seconds = fraud.min_seconds_to_convert
    if seconds is not None and not 1 <= seconds <= MAX_SECONDS_TO_CONVERT:
        raise RuleViolation(f"{field}.min_seconds_to_convert",
                            f"must be 1 to {MAX_SECONDS_TO_CONVERT} seconds", "invalid_fraud")
    return FraudSettings(
        min_seconds_to_convert=seconds,
        max_conversions_per_ip_per_day=_per_day(fraud.max_conversions_per_ip_per_day,
                                                f"{field}.max_conversions_per_ip_per_day",
                                                MAX_CONVERSIONS_PER_IP),
        blocked_ips=check_networks(fraud.blocked_ips, f"{field}.blocked_ips", MAX_BLOCKED),
        blocked_sub1=check_blocked_values(fraud.blocked_sub1, f"{field}.blocked_sub1"),
        action=fraud.action,
        max_clicks_per_ip_per_day=_per_day(fraud.max_clicks_per_ip_per_day,
                                           f"{field}.max_clicks_per_ip_per_day", MAX_PER_DAY),
        max_clicks_per_visitor_per_day=_per_day(fraud.max_clicks_per_visitor_per_day,
                                                f"{field}.max_clicks_per_visitor_per_day", MAX_PER_DAY),
        max_impressions_per_ip_per_day=_per_day(fraud.max_impressions_per_ip_per_day,
                                                f"{field}.max_impressions_per_ip_per_day", MAX_PER_DAY),
        blocked_subs=check_blocked_subs(fraud.blocked_subs, f"{field}.blocked_subs"),
    )


def check_relationship_events(events: Iterable[RelationshipEvent], offer_events: Iterable[str],
                              field: str = "events") -> tuple[RelationshipEvent, ...]:
    """A partner's custom terms name events the offer has, each once, with a payout, a
    revenue or both."""
    given, known = tuple(events), tuple(offer_events)
    _at_most(given, field, "events")
    seen: set[str] = set()
    checked = []
    for i, event in enumerate(given):
        at = f"{field}.{i}"
        if event.name not in known:
            raise RuleViolation(f"{at}.name", f"the offer has no event {event.name[:80]!r} "
                                f"(its events: {', '.join(known)})", "unknown_event")
        if event.name in seen:
            raise RuleViolation(f"{at}.name", f"event {event.name!r} is listed twice", "duplicate_event")
        seen.add(event.name)
        if event.payout is None and event.revenue is None:
            raise RuleViolation(at, "gives neither a payout nor a revenue", "invalid_terms")
        checked.append(RelationshipEvent(
            event.name,
            check_conversion_terms(event.payout, f"{at}.payout") if event.payout else None,
            check_conversion_terms(event.revenue, f"{at}.revenue") if event.revenue else None,
        ))
    return tuple(checked)


def check_tags(tags: Iterable[str], field: str = "tags") -> tuple[str, ...]:
    """Labels: not blank, short, each kept once in the order given."""
    kept: dict[str, None] = {}
    for tag in tags:
        label = tag.strip()
        if not label or len(label) > MAX_LABEL_LENGTH or _has_control(label):
            raise RuleViolation(field, f"a tag must be 1 to {MAX_LABEL_LENGTH} characters, no control "
                                "characters", "invalid_tag")
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
    networks = check_networks(security.allowed_ips, f"{field}.allowed_ips", MAX_ALLOWED_IPS)
    return ConversionSecurity(security.token_required, networks, security.pixel_allowed,
                              security.pixel_review)
