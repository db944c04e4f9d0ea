"""Attribution's view tables on PostgreSQL (each declared once, as a ``Table``) and how
domain values map to their rows.

Every insert is idempotent on its natural key, so a redelivered message (already
guarded by the inbox) could not double anything either. Terms are kept as versions
keyed by ``effective_from``; two versions of one offer (or relationship) stamped the
same instant are two facts of one key, delivered in order, so the later one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from afflux_attribution.adapters import program_json as program
from afflux_attribution.application.ports import Held
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.rules import Click
from afflux_attribution.domain.terms import OfferTerms, PricingTerms, RelationshipTerms
from afflux_contracts import ClickOutcome, OfferStatus, PayoutType
from afflux_plumbing.tables import Table

_PRICES = ("payout_type text", "payout_amount numeric", "payout_percent numeric", "revenue_type text",
           "revenue_amount numeric", "revenue_percent numeric")
_SUBS = ("sub1 text", "sub2 text", "sub3 text", "sub4 text", "sub5 text")

OFFER_TERMS = Table("offer_terms", (
    "offer_id text NOT NULL", "effective_from timestamptz NOT NULL", "currency text NOT NULL",
    "payout_type text NOT NULL", *_PRICES[1:], "attribution_window_days integer NOT NULL",
    "status text NOT NULL", "event_id text", "program jsonb"), key=("offer_id", "effective_from"))
RELATIONSHIP_TERMS = Table("relationship_terms", (
    "offer_id text NOT NULL", "partner_id text NOT NULL", "effective_from timestamptz NOT NULL",
    "approved boolean NOT NULL", *_PRICES, "event_id text", "program jsonb"),
    key=("offer_id", "partner_id", "effective_from"))
PARTNERS = Table("partners", ("partner_id text NOT NULL", "status text NOT NULL",
                              "status_at timestamptz NOT NULL"), key=("partner_id",))
COUPONS = Table("coupons", ("code text NOT NULL", "offer_id text NOT NULL", "partner_id text NOT NULL"),
                key=("code", "offer_id"))
"""The coupon register: each code's partner on each offer (codes are kept upper case)."""
CLICKS = Table("clicks", (
    "transaction_id text NOT NULL", "offer_id text NOT NULL", "partner_id text NOT NULL",
    "clicked_at timestamptz NOT NULL", "outcome text NOT NULL", "sub1 text", "ip text", *_SUBS[1:],
    "visitor text", "pricing text"), key=("transaction_id",))
"""The click index; ``pricing``: on an offer paying per click, ``earned`` or why not."""
CONVERSIONS = Table("conversions", (
    "conversion_id text NOT NULL", "status text NOT NULL", "reason text", "message text",
    "event text NOT NULL", "transaction_id text", "partner_id text", "offer_id text", "order_id text",
    "currency text", "payout numeric", "revenue numeric", "sale_amount numeric", "clicked_at timestamptz",
    "converted_at timestamptz NOT NULL", "decided_at timestamptz NOT NULL", "note text",
    "changed_at timestamptz", "coupon_code text", "trace jsonb", "terms jsonb", *_SUBS),
    key=("conversion_id",))
HELD = Table("held_reports", (
    "conversion_id text NOT NULL", "event text NOT NULL", "transaction_id text", "offer_id text",
    "converted_at timestamptz NOT NULL", "message text NOT NULL", "reason text", "waits_for jsonb"),
    key=("conversion_id",))
"""Reports read but not decided yet (parked): they answer ``pending`` with their reason."""
CREDITED_ORDERS = Table("credited_orders", (
    "offer_id text NOT NULL", "order_id text NOT NULL", "conversion_id text NOT NULL"),
    key=("offer_id", "order_id"))
CONVERTED_EVENTS = Table("converted_events", (
    "transaction_id text NOT NULL", "event text NOT NULL", "conversion_id text NOT NULL"),
    key=("transaction_id", "event"))
"""One conversion per transaction and event (unless the event allows duplicates)."""
PROGRAM_COUNTS = Table("program_counts", (
    "offer_id text NOT NULL", "partner_id text NOT NULL", "period text NOT NULL",
    "conversions bigint NOT NULL DEFAULT 0", "approved bigint NOT NULL DEFAULT 0",
    "payout numeric NOT NULL DEFAULT 0", "revenue numeric NOT NULL DEFAULT 0",
    "clicks bigint NOT NULL DEFAULT 0"), key=("offer_id", "partner_id", "period"))
"""What caps and tiers count, per offer (partner '' = every partner) and period bucket."""
IP_COUNTS = Table("ip_counts", ("offer_id text NOT NULL", "ip text NOT NULL", "day date NOT NULL",
                                "conversions bigint NOT NULL DEFAULT 0"), key=("offer_id", "ip", "day"))
IMPRESSION_COUNTS = Table("impression_counts", (
    "offer_id text NOT NULL", "partner_id text NOT NULL", "impressions bigint NOT NULL DEFAULT 0"),
    key=("offer_id", "partner_id"))
"""CPM: earning impressions per partner and offer (each thousandth prices the thousand)."""
UNIQUE_VISITS = Table("unique_visits", (
    "offer_id text NOT NULL", "kind text NOT NULL", "visitor text NOT NULL", "span bigint NOT NULL",
    "ref text NOT NULL"), key=("offer_id", "kind", "visitor", "span"))
"""A visitor key's earning visit on an offer in one window (``span``): taken once."""
TRAFFIC_COUNTERS = Table("traffic_counters", (
    "offer_id text NOT NULL", "counter text NOT NULL", "subject text NOT NULL", "day date NOT NULL",
    "n bigint NOT NULL DEFAULT 0"), key=("offer_id", "counter", "subject", "day"))
"""The daily limits' counts: valid clicks per IP and per visitor, impressions per IP."""
TRAFFIC_OUTCOMES = Table("traffic_outcomes", (
    "offer_id text NOT NULL", "partner_id text NOT NULL", "kind text NOT NULL", "day date NOT NULL",
    "outcome text NOT NULL", "n bigint NOT NULL DEFAULT 0"),
    key=("offer_id", "partner_id", "kind", "day", "outcome"))
"""Paid-model traffic judged, per day: how many earned, how many were refused for each reason."""

TABLES = (OFFER_TERMS, RELATIONSHIP_TERMS, PARTNERS, COUPONS, CLICKS, CONVERSIONS, HELD, CREDITED_ORDERS,
          CONVERTED_EVENTS, PROGRAM_COUNTS, IP_COUNTS, IMPRESSION_COUNTS, UNIQUE_VISITS, TRAFFIC_COUNTERS,
          TRAFFIC_OUTCOMES)
VIEW_DDL: Sequence[str] = (
    *(statement for table in TABLES for statement in table.ddl()),
    # The admin listing's order (keyset pagination), and its filters.
    "CREATE INDEX IF NOT EXISTS conversions_by_time ON {schema}.conversions (converted_at, conversion_id)",
    "CREATE INDEX IF NOT EXISTS conversions_by_partner "
    "ON {schema}.conversions (partner_id, converted_at, conversion_id)",
    # The review queue (``status=pending``): without it a page of the few held conversions
    # scans every decided one before them (seconds with a million).
    "CREATE INDEX IF NOT EXISTS conversions_by_status "
    "ON {schema}.conversions (status, converted_at, conversion_id)",
)
REVIEWED = tuple(column for column in CONVERSIONS.column_names if column != "conversion_id")
"""What a review may change in a conversion's row (all of it but its id)."""


def utc(value: datetime) -> datetime:
    """A timestamptz as read (in the session's time zone), in UTC, as everywhere else."""
    return value.astimezone(UTC)


def terms_columns(prefix: str, terms: PricingTerms | None) -> dict[str, Any]:
    return {
        f"{prefix}_type": terms.type.value if terms else None,
        f"{prefix}_amount": terms.amount if terms else None,
        f"{prefix}_percent": terms.percent if terms else None,
    }


def terms_from(row: dict[str, Any], prefix: str) -> PricingTerms | None:
    if row[f"{prefix}_type"] is None:
        return None
    return PricingTerms(PayoutType(row[f"{prefix}_type"]), row[f"{prefix}_amount"], row[f"{prefix}_percent"])


def offer_terms_row(terms: OfferTerms) -> dict[str, Any]:
    return {
        "offer_id": terms.offer_id, "effective_from": terms.effective_from, "currency": terms.currency,
        **terms_columns("payout", terms.payout), **terms_columns("revenue", terms.revenue),
        "attribution_window_days": terms.attribution_window_days, "status": terms.status.value,
        "event_id": terms.event_id, "program": program.offer_program_json(terms),
    }


def offer_terms_from(row: dict[str, Any]) -> OfferTerms:
    payout = terms_from(row, "payout")
    assert payout is not None, "offer_terms.payout_type is NOT NULL"
    return program.with_offer_program(OfferTerms(
        offer_id=row["offer_id"], effective_from=utc(row["effective_from"]), currency=row["currency"],
        payout=payout, revenue=terms_from(row, "revenue"), status=OfferStatus(row["status"]),
        attribution_window_days=row["attribution_window_days"], event_id=row["event_id"],
    ), row["program"])


def relationship_terms_row(terms: RelationshipTerms) -> dict[str, Any]:
    return {
        "offer_id": terms.offer_id, "partner_id": terms.partner_id, "effective_from": terms.effective_from,
        "approved": terms.approved, **terms_columns("payout", terms.payout),
        **terms_columns("revenue", terms.revenue), "event_id": terms.event_id,
        "program": program.relationship_program_json(terms),
    }


def relationship_terms_from(row: dict[str, Any]) -> RelationshipTerms:
    return program.with_relationship_program(RelationshipTerms(
        offer_id=row["offer_id"], partner_id=row["partner_id"], effective_from=utc(row["effective_from"]),
        approved=row["approved"], payout=terms_from(row, "payout"), revenue=terms_from(row, "revenue"),
        event_id=row["event_id"],
    ), row["program"])


def click_row(click: Click, visitor: str | None, pricing: str | None) -> dict[str, Any]:
    return {"transaction_id": click.transaction_id, "offer_id": click.offer_id,
            "partner_id": click.partner_id, "clicked_at": click.clicked_at, "outcome": click.outcome.value,
            "ip": click.ip, **click.subs, "visitor": visitor, "pricing": pricing}


def click_from(row: dict[str, Any]) -> Click:
    return Click(transaction_id=row["transaction_id"], offer_id=row["offer_id"], partner_id=row["partner_id"],
                 clicked_at=utc(row["clicked_at"]), outcome=ClickOutcome(row["outcome"]), sub1=row["sub1"],
                 ip=row["ip"], sub2=row["sub2"], sub3=row["sub3"], sub4=row["sub4"], sub5=row["sub5"])


def conversion_row(conversion: Conversion) -> dict[str, Any]:
    """The conversions view row of a decided conversion."""
    subs = getattr(conversion, "subs", None) or {}
    return {
        "conversion_id": conversion.conversion_id, "status": conversion.status.value,
        "reason": conversion.reason, "message": conversion.message, "event": conversion.event,
        "transaction_id": conversion.transaction_id, "partner_id": conversion.partner_id,
        "offer_id": conversion.offer_id, "order_id": conversion.order_id, "currency": conversion.currency,
        "payout": conversion.payout, "revenue": conversion.revenue, "sale_amount": conversion.sale_amount,
        "clicked_at": conversion.clicked_at, "converted_at": conversion.converted_at,
        "decided_at": conversion.decided_at, "note": conversion.note, "changed_at": conversion.changed_at,
        "coupon_code": conversion.coupon_code, "trace": conversion.trace, "terms": conversion.terms,
        **{name: subs.get(name) for name in ("sub1", "sub2", "sub3", "sub4", "sub5")},
    }


def held_row(held: Held) -> dict[str, Any]:
    waits_for = {str(p): o for p, o in held.waits_for.items()} if held.waits_for is not None else None
    return {"conversion_id": held.conversion_id, "event": held.event, "transaction_id": held.transaction_id,
            "offer_id": held.offer_id, "converted_at": held.converted_at, "message": held.message,
            "reason": held.reason, "waits_for": waits_for}


def held_from(row: dict[str, Any]) -> Held:
    waits_for = row["waits_for"]
    return Held(row["conversion_id"], row["event"], row["transaction_id"], row["offer_id"],
                utc(row["converted_at"]), row["reason"] or "awaiting_offer_terms", row["message"],
                {int(p): int(o) for p, o in waits_for.items()} if waits_for is not None else None)
