"""An offer's form and a relationship's form, to and from the partners API's bodies.

A form is flat: repeated parts (events, caps, tiers) are numbered rows
(``event-0-name``, ``cap-1-limit`` ...), a row left empty is ignored, and the page
shows one or two empty rows to add more. What the form shows is exactly what it
sends back (``form_of`` is ``body_of``'s inverse for every field the form has), so
saving an offer unchanged changes nothing. Amounts travel as the decimal text typed
(the API reads them exactly); whole numbers are checked here so that the person is
told which field to fix, as the API would. Targeting's fields are one set for both forms,
named by the API's paths, so a refusal from partners lands at the field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from afflux_console.entrypoints.browser_session import Form

PAYOUT_TYPES = ("cpa", "cps", "cpa_cps", "cpc", "cpm")
CAP_METRICS = ("clicks", "conversions", "payout", "revenue")
CAP_PERIODS = ("day", "week", "month", "lifetime")
VISIBILITIES = ("public", "require_approval", "private")
OFFER_STATUSES = ("active", "paused", "pending", "deleted")
SUBS = ("sub2", "sub3", "sub4", "sub5")
EMPTY_ROWS = 2
MAX_ROWS = 100
FRAUD_NUMBERS = (
    "min_seconds_to_convert",
    "max_conversions_per_ip_per_day",
    "max_clicks_per_ip_per_day",
    "max_clicks_per_visitor_per_day",
    "max_impressions_per_ip_per_day",
)


class FormInvalid(ValueError):
    """A field the form cannot send as it is: which one, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _whole(form: Form, name: str) -> int | None:
    text = form.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise FormInvalid(name, f"{name.replace('_', ' ')}: a whole number") from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _terms(form: Form, prefix: str, required: bool = True) -> dict[str, Any] | None:
    kind = form.get(f"{prefix}type")
    if not kind:
        if required:
            raise FormInvalid(f"{prefix}type", "choose a payout type")
        return None
    terms: dict[str, Any] = {"type": kind}
    if form.get(f"{prefix}amount"):
        terms["amount"] = form.get(f"{prefix}amount")
    if form.get(f"{prefix}percent"):
        terms["percent"] = form.get(f"{prefix}percent")
    return terms


def _rows(form: Form, prefix: str, key: str) -> list[int]:
    """The numbers of the rows ``prefix-N-…`` whose ``key`` field is filled in."""
    numbers = set()
    for name in form.names():
        parts = name.split("-", 2)
        if len(parts) == 3 and parts[0] == prefix and parts[1].isdigit() and int(parts[1]) < MAX_ROWS:
            numbers.add(int(parts[1]))
    return sorted(n for n in numbers if form.get(f"{prefix}-{n}-{key}"))


def _checked(form: Form, name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def _events(form: Form) -> list[dict[str, Any]]:
    events = []
    for n in _rows(form, "event", "name"):
        p = f"event-{n}-"
        event: dict[str, Any] = {
            "name": form.get(p + "name"),
            "payout": _terms(form, p + "payout_"),
            "allow_duplicates": _checked(form, p + "allow_duplicates"),
            "requires_approval": _checked(form, p + "requires_approval"),
            "fires_partner_postback": _checked(form, p + "fires_partner_postback"),
        }
        revenue = _terms(form, p + "revenue_", required=False)
        if revenue:
            event["revenue"] = revenue
        for bound in ("max_sale_amount", "max_payout"):
            if form.get(p + bound):
                event[bound] = form.get(p + bound)
        events.append(event)
    return events


def _caps(form: Form, prefix: str = "cap") -> list[dict[str, Any]]:
    return [
        {
            "metric": form.get(f"{prefix}-{n}-metric"),
            "period": form.get(f"{prefix}-{n}-period"),
            "limit": form.get(f"{prefix}-{n}-limit"),
            "per_partner": _checked(form, f"{prefix}-{n}-per_partner"),
            "hard": _checked(form, f"{prefix}-{n}-hard"),
        }
        for n in _rows(form, prefix, "limit")
    ]


def _tiers(form: Form) -> list[dict[str, Any]]:
    return [
        {
            "min_conversions": _whole(form, f"tier-{n}-min_conversions"),
            "payout": _terms(form, f"tier-{n}-payout_"),
        }
        for n in _rows(form, "tier", "min_conversions")
    ]


def _fraud(form: Form) -> dict[str, Any] | None:
    fraud: dict[str, Any] = {name: _whole(form, name) for name in FRAUD_NUMBERS if form.get(name)}
    lists = {"blocked_ips": _lines(form.get("blocked_ips")), "blocked_sub1": _lines(form.get("blocked_sub1"))}
    subs = {sub: _lines(form.get(f"blocked_{sub}")) for sub in SUBS if _lines(form.get(f"blocked_{sub}"))}
    if not fraud and not any(lists.values()) and not subs:
        return None
    return {**fraud, **lists, "blocked_subs": subs, "action": form.get("fraud_action") or "reject"}


def offer_body(form: Form, creating: bool) -> dict[str, Any]:
    """The body of ``POST /v1/offers`` (``creating``) or of ``PATCH /v1/offers/{id}``."""
    body: dict[str, Any] = {
        "name": form.get("name"),
        "destination_url": form.get("destination_url"),
        "visibility": form.get("visibility") or "require_approval",
        "payout": _terms(form, "payout_"),
        "revenue": _terms(form, "revenue_", required=False),
        "events": _events(form),
        "caps": _caps(form),
        "tiers": _tiers(form),
        "fraud": _fraud(form),
        "targeting": targeting_body(form),
        "fallback_url": form.get("fallback_url") or None,
        "max_sale_amount": form.get("max_sale_amount") or None,
        "max_payout": form.get("max_payout") or None,
        "over_limit_action": form.get("over_limit_action") or "review",
        "conversion_security": {
            "token_required": _checked(form, "token_required"),
            "pixel_allowed": _checked(form, "pixel_allowed"),
            "pixel_review": _checked(form, "pixel_review"),
            "allowed_ips": _lines(form.get("allowed_ips")),
        },
    }
    for name in ("attribution_window_days", "unique_click_hours"):
        value = _whole(form, name)
        if value is not None:
            body[name] = value
    if form.get("coupon_precedence"):
        body["coupon_precedence"] = form.get("coupon_precedence")
    if creating:
        body["currency"] = form.get("currency").upper()
        body["status"] = form.get("status") or "active"
        return {name: value for name, value in body.items() if value is not None}
    return body


def _terms_fields(prefix: str, terms: Mapping[str, Any] | None) -> dict[str, str]:
    terms = terms or {}
    return {
        f"{prefix}type": str(terms.get("type") or ""),
        f"{prefix}amount": str(terms.get("amount") or ""),
        f"{prefix}percent": str(terms.get("percent") or ""),
    }


def form_of(offer: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values for an offer as the API reads it (what ``offer_body`` reads back)."""
    fields: dict[str, Any] = {
        name: "" if offer.get(name) is None else str(offer[name])
        for name in (
            "name",
            "destination_url",
            "currency",
            "visibility",
            "status",
            "fallback_url",
            "attribution_window_days",
            "unique_click_hours",
            "max_sale_amount",
            "max_payout",
            "over_limit_action",
            "coupon_precedence",
        )
    }
    fields |= _terms_fields("payout_", offer.get("payout")) | _terms_fields("revenue_", offer.get("revenue"))
    events = list(offer.get("events") or [])
    for n, event in enumerate(events):
        p = f"event-{n}-"
        fields |= {
            p + "name": event["name"],
            **_terms_fields(p + "payout_", event.get("payout")),
            **_terms_fields(p + "revenue_", event.get("revenue")),
        }
        for flag in ("allow_duplicates", "requires_approval", "fires_partner_postback"):
            fields[p + flag] = "on" if event.get(flag) else ""
        for bound in ("max_sale_amount", "max_payout"):
            fields[p + bound] = str(event.get(bound) or "")
    fields |= caps_form(offer.get("caps") or [], "cap")
    for n, tier in enumerate(offer.get("tiers") or []):
        fields |= {
            f"tier-{n}-min_conversions": str(tier["min_conversions"]),
            **_terms_fields(f"tier-{n}-payout_", tier.get("payout")),
        }
    fraud = offer.get("fraud") or {}
    fields |= {name: "" if fraud.get(name) is None else str(fraud[name]) for name in FRAUD_NUMBERS}
    fields |= {
        "blocked_ips": "\n".join(fraud.get("blocked_ips") or []),
        "blocked_sub1": "\n".join(fraud.get("blocked_sub1") or []),
        "fraud_action": fraud.get("action") or "reject",
    }
    for sub in SUBS:
        fields[f"blocked_{sub}"] = "\n".join((fraud.get("blocked_subs") or {}).get(sub, []))
    security = offer.get("conversion_security") or {"token_required": True, "pixel_review": True}
    for flag in ("token_required", "pixel_allowed", "pixel_review"):
        fields[flag] = "on" if security.get(flag) else ""
    fields["allowed_ips"] = "\n".join(security.get("allowed_ips") or [])
    fields |= targeting_form(offer.get("targeting"))
    fields["rows"] = {
        "event": len(events) + EMPTY_ROWS,
        "cap": len(offer.get("caps") or []) + EMPTY_ROWS,
        "tier": len(offer.get("tiers") or []) + EMPTY_ROWS,
    }
    return fields


def caps_form(caps: list[Mapping[str, Any]], prefix: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for n, cap in enumerate(caps):
        fields |= {
            f"{prefix}-{n}-metric": str(cap["metric"]),
            f"{prefix}-{n}-period": str(cap["period"]),
            f"{prefix}-{n}-limit": str(cap["limit"]),
            f"{prefix}-{n}-per_partner": "on" if cap.get("per_partner") else "",
            f"{prefix}-{n}-hard": "on" if cap.get("hard") else "",
        }
    return fields


NEW_OFFER: dict[str, Any] = {
    "visibility": "require_approval",
    "status": "active",
    "currency": "USD",
    "attribution_window_days": "30",
    "unique_click_hours": "24",
    "over_limit_action": "review",
    "coupon_precedence": "click_first",
    "payout_type": "cpa",
    "token_required": "on",
    "pixel_review": "on",
    "fraud_action": "reject",
    "event-0-fires_partner_postback": "on",
    "event-1-fires_partner_postback": "on",
    "cap-0-hard": "on",
    "cap-1-hard": "on",
    "rows": {"event": EMPTY_ROWS, "cap": EMPTY_ROWS, "tier": EMPTY_ROWS},
}


def posted_values(form: Form) -> dict[str, Any]:
    """A form as it was posted, to show it again with the service's refusal."""
    values: dict[str, Any] = {name: form.get(name) for name in form.names()}
    for ticked in ("weekdays", "hours"):
        values[f"targeting.day_parting.{ticked}"] = form.all(f"targeting.day_parting.{ticked}")
    values["rows"] = {
        kind: max([*(_rows(form, kind, key) or [-1])]) + 1 + EMPTY_ROWS
        for kind, key in (("event", "name"), ("cap", "limit"), ("tier", "min_conversions"))
    }
    return values


# -- targeting (an offer's, and a relationship's that narrows it) ---------------------------

TARGETING_LISTS = {
    "countries": "Countries",
    "devices": "Devices",
    "operating_systems": "Operating systems",
    "browsers": "Browsers",
    "referrer_domains": "Referring domains",
}
TARGETING_HINTS = {
    "countries": "ISO codes: GB, IE",
    "devices": "desktop, mobile, tablet, other",
    "operating_systems": "windows, macos, ios, android, linux, chromeos, other",
    "browsers": "chrome, safari, firefox, edge, opera, samsung, other",
    "referrer_domains": "news.example: it and its subdomains",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def targeting_names(prefix: str = "targeting") -> tuple[str, ...]:
    """The targeting fields' names: the API's paths (``targeting.countries.allow``), so that
    a refusal naming ``targeting.countries.allow.0`` finds its field without a table."""
    lists = [f"{prefix}.{dimension}.{side}" for dimension in TARGETING_LISTS for side in ("allow", "deny")]
    return (*lists, *(f"{prefix}.day_parting.{part}" for part in ("time_zone", "weekdays", "hours")))


def _chosen(form: Form, name: str, low: int, high: int) -> list[int]:
    """Ticked boxes' numbers: a value outside the boxes the page offers is a forged form."""
    try:
        numbers = sorted({int(value) for value in form.all(name)})
    except ValueError:
        raise FormInvalid(name, "tick the boxes the page offers") from None
    if any(not low <= number <= high for number in numbers):
        raise FormInvalid(name, f"from {low} to {high}")
    return numbers


def targeting_body(form: Form, prefix: str = "targeting") -> dict[str, Any] | None:
    """The API's ``targeting`` from the form's fields; None when they are all empty (no
    targeting). Day parting is sent only with weekdays or hours ticked: a time zone alone
    admits every hour, which is what no day parting says."""
    targeting: dict[str, Any] = {
        dimension: {side: _lines(form.get(f"{prefix}.{dimension}.{side}")) for side in ("allow", "deny")}
        for dimension in TARGETING_LISTS
    }
    parting = f"{prefix}.day_parting."
    weekdays, hours = _chosen(form, parting + "weekdays", 1, 7), _chosen(form, parting + "hours", 0, 23)
    if not weekdays and not hours:
        listed = any(lists["allow"] or lists["deny"] for lists in targeting.values())
        return targeting if listed else None
    time_zone = form.get(parting + "time_zone") or "UTC"
    return targeting | {"day_parting": {"time_zone": time_zone, "weekdays": weekdays, "hours": hours}}


def targeting_form(targeting: Mapping[str, Any] | None, prefix: str = "targeting") -> dict[str, Any]:
    """The form's values for a targeting as the API reads it (what ``targeting_body`` reads
    back); the ticked weekdays and hours are lists of their numbers as text."""
    found = targeting or {}
    fields: dict[str, Any] = {
        f"{prefix}.{dimension}.{side}": "\n".join((found.get(dimension) or {}).get(side) or [])
        for dimension in TARGETING_LISTS
        for side in ("allow", "deny")
    }
    parting = found.get("day_parting") or {}
    return fields | {
        f"{prefix}.day_parting.time_zone": parting.get("time_zone") or "",
        f"{prefix}.day_parting.weekdays": [str(day) for day in parting.get("weekdays") or []],
        f"{prefix}.day_parting.hours": [str(hour) for hour in parting.get("hours") or []],
    }


def targeting_field(refused_field: str | None, prefix: str = "targeting") -> str | None:
    """The form's field for one the API refused (``targeting.countries.allow.0`` →
    ``targeting.countries.allow``); None when it is not a targeting field."""
    if refused_field is None:
        return None
    parts = refused_field.split(".")
    while parts and parts[-1].isdigit():
        parts.pop()
    name = ".".join(parts)
    return name if name in targeting_names(prefix) else None


def targeting_summary(targeting: Mapping[str, Any] | None) -> str:
    """One line for a list's cell: ``Countries GB, IE; Devices not tablet; Mon, Fri 9, 10
    (Europe/Paris)``; empty for no targeting."""
    if not targeting:
        return ""
    parts = []
    for dimension, label in TARGETING_LISTS.items():
        lists = targeting.get(dimension) or {}
        if lists.get("allow"):
            parts.append(f"{label} {', '.join(lists['allow'])}")
        if lists.get("deny"):
            parts.append(f"{label} not {', '.join(lists['deny'])}")
    parting = targeting.get("day_parting")
    if parting:
        days = ", ".join(WEEKDAYS[day - 1] for day in parting.get("weekdays") or []) or "every day"
        hours = ", ".join(str(hour) for hour in parting.get("hours") or []) or "all day"
        parts.append(f"{days}, hours {hours} ({parting.get('time_zone') or 'UTC'})")
    return "; ".join(parts)


# -- relationships ------------------------------------------------------------------------


def relationship_body(form: Form) -> dict[str, Any]:
    """``PUT /v1/offers/{offer_id}/partners/{partner_id}``: the whole relationship."""
    body: dict[str, Any] = {
        "approved": form.get("approved") == "yes",
        "events": [
            {"name": form.get(f"revent-{n}-name"), "payout": _terms(form, f"revent-{n}-payout_")}
            for n in _rows(form, "revent", "payout_type")
        ],
        "caps": _caps(form, "rcap"),
        "coupon_codes": _lines(form.get("coupon_codes")),
        "postback_url": form.get("postback_url") or None,
        "postback_method": form.get("postback_method") or "get",
        "postback_status_changes": _checked(form, "postback_status_changes"),
    }
    targeting = targeting_body(form)
    if targeting is not None:
        body["targeting"] = targeting
    payout = _terms(form, "payout_", required=False)
    if payout:
        body["payout"] = payout
    revenue = _terms(form, "revenue_", required=False)
    if revenue:
        body["revenue"] = revenue
    return body


def relationship_form(relationship: Mapping[str, Any] | None, events: list[str]) -> dict[str, Any]:
    found = relationship or {}
    fields: dict[str, Any] = {
        "approved": "yes" if found.get("approved", True) else "no",
        **_terms_fields("payout_", found.get("payout")),
        **_terms_fields("revenue_", found.get("revenue")),
        "coupon_codes": "\n".join(found.get("coupon_codes") or []),
        "postback_url": found.get("postback_url") or "",
        "postback_method": found.get("postback_method") or "get",
        "postback_status_changes": "on" if found.get("postback_status_changes") else "",
        **targeting_form(found.get("targeting")),
    }
    custom = {e["name"]: e for e in found.get("events") or []}
    for n, name in enumerate(events):
        fields[f"revent-{n}-name"] = name
        fields |= _terms_fields(f"revent-{n}-payout_", (custom.get(name) or {}).get("payout"))
    fields |= caps_form(found.get("caps") or [], "rcap")
    fields["rows"] = {"rcap": len(found.get("caps") or []) + EMPTY_ROWS, "revent": len(events)}
    return fields
