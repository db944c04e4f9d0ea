"""How the console's pages show things: times, money, names for ids, statuses, pages.

Times are rendered as ``<time datetime="…Z">`` with a readable UTC text; the console's
own script rewrites that text in the viewer's time zone (the UTC text stays if scripts
are off, and the exact instant is always on hover). An id is shown by its name when one
is known, the id itself on hover; otherwise shortened, whole on hover.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape


def instant(value: Any) -> datetime | None:
    """A datetime from an API's RFC 3339 text (or a datetime); None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def when(value: Any, dated: bool = True) -> Markup:
    """``<time>`` for an instant: readable UTC now, the viewer's zone once the script runs."""
    moment = instant(value)
    if moment is None:
        return Markup('<span class="none">—</span>')
    moment = moment.astimezone(UTC)
    exact = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    shown = moment.strftime("%Y-%m-%d %H:%M UTC" if dated else "%H:%M UTC")
    return Markup(f'<time datetime="{exact}" title="{exact}">{shown}</time>')


def day(value: Any) -> Markup:
    """A calendar day (a period end, a report's day, a ``date``): no zone conversion."""
    moment = value if isinstance(value, date) and not isinstance(value, datetime) else instant(value)
    if moment is None:
        return Markup('<span class="none">—</span>')
    shown = moment.date() if isinstance(moment, datetime) else moment
    return Markup(f'<time datetime="{shown.isoformat()}">{shown.strftime("%b %-d, %Y")}</time>')


def money(amount: Any, currency: str | None = None) -> str:
    """``1,234.50 USD`` (the amount exactly as the ledger has it, grouped for reading)."""
    if isinstance(amount, Mapping):
        amount, currency = amount.get("amount"), amount.get("currency", currency)
    if amount is None or amount == "":
        return "—"
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    exponent = number.as_tuple().exponent
    places = max(-exponent, 0) if isinstance(exponent, int) else 2
    text = f"{number:,.{places}f}"
    return f"{text} {currency}" if currency else text


def short(value: Any) -> str:
    text = str(value or "")
    return text if len(text) <= 12 else f"{text[:8]}…"


def named(names: Mapping[str, str] | None, value: Any, href: str | None = None) -> Markup:
    """The name of ``value`` with the id on hover (a link to ``href`` when given); the id
    shortened when no name is known."""
    if not value:
        return Markup('<span class="none">—</span>')
    key = str(value)
    name = (names or {}).get(key)
    shown = escape(name) if name else escape(short(key))
    inner = Markup(f'<span class="named" title="{escape(key)}">{shown}</span>')
    return Markup(f'<a href="{escape(href)}">{inner}</a>') if href else inner


def words(value: Any) -> str:
    """``require_approval`` → ``Require approval``."""
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def badge(value: Any) -> Markup:
    text = str(value or "")
    return Markup(f'<span class="badge badge-{escape(text)}">{escape(words(text))}</span>')


def terms(value: Any, currency: str | None = None) -> str:
    """A payout's terms: ``CPA 5.00 USD``, ``CPS 10%``, ``CPA+CPS 2.00 USD + 5%``."""
    if not isinstance(value, Mapping):
        return "—"
    kind = str(value.get("type", "")).upper().replace("_", "+")
    parts = []
    if value.get("amount") is not None:
        parts.append(money(value["amount"], currency))
    if value.get("percent") is not None:
        parts.append(f"{value['percent']}%")
    return f"{kind} {' + '.join(parts)}".strip()


def query(params: Mapping[str, Any], **changes: Any) -> str:
    """``?…``: the page's parameters with ``changes`` (None removes one)."""
    merged = {**{k: v for k, v in params.items() if v not in (None, "")}, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else "?"


def templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("afflux_console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=when, day=day, money=money, short=short, words=words, badge=badge, terms=terms
    )
    environment.globals.update(named=named, query=query)
    return environment
