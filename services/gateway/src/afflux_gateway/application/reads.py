"""What the gateway answers, and the reads each answer needs (a protocol per use case;
PostgreSQL in ``adapters.views``, payouts over HTTP in ``adapters.payouts_client``).

Every partner read takes the partner_id of the caller (from its key or session), never
one from the request: that is what keeps a partner's key from reading another
partner's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from afflux_gateway.domain.access import may_see
from afflux_gateway.domain.report import Figures, GroupBy, Window

Row = Mapping[str, Any]
Balances = dict[str, dict[str, str]]
"""Per currency, per bucket (accrued, pending, payable, paid): a decimal string."""


@dataclass(frozen=True)
class KeyHolder:
    partner_id: str
    key_id: str
    key_sha256: str


@dataclass(frozen=True)
class ReportRow:
    group: str
    currency: str
    figures: Figures


@dataclass(frozen=True)
class ConversionKey:
    converted_at: datetime
    conversion_id: str


class Keys(Protocol):
    """Who is calling: a key by its hash, and whether a portal session still stands."""

    def key_holder(self, sha256_hex: str) -> KeyHolder | None:
        """The partner holding the unrevoked key with this hash."""
        ...

    def session_live(self, key_id: str, partner_id: str, nonce: str) -> bool:
        """The session's key is not revoked and the session was not signed out."""
        ...

    def end_session(self, nonce: str, expires_at: datetime) -> None:
        """Sign the session out (remembered until it would have expired)."""
        ...


class Partners(Protocol):
    def partner(self, partner_id: str) -> Row | None: ...

    def payout_profile(self, partner_id: str) -> Row | None:
        """The partner's tax and payment profile as the log summarises it (``complete``,
        ``missing``, ``country``, ``tax_form``, ``payment_method``), or None before any."""
        ...


class Offers(Protocol):
    def offer_rows(self, partner_id: str, offer_id: str | None) -> Sequence[Row]:
        """Active offers with the partner's relationship to each (``approved``,
        ``application``, ``custom_payout``, ``custom_events``), by name."""
        ...


class Reports(Protocol):
    def report(
        self, window: Window, group_by: GroupBy, partner_id: str | None, top: int | None = None
    ) -> list[ReportRow]:
        """Summed figures of the window per group and currency (``InvalidReport`` for a
        zone the store does not know); ``top``: only the N groups with the most revenue."""
        ...


class Conversions(Protocol):
    def conversions(
        self, partner_id: str, limit: int, after: ConversionKey | None, status: str | None, kind: str | None
    ) -> Sequence[Row]:
        """The partner's conversions (and priced traffic), oldest first."""
        ...


class Statements(Protocol):
    def statements(self, partner_id: str) -> Sequence[Row]: ...


class Postbacks(Protocol):
    def postbacks(self, partner_id: str, limit: int) -> Sequence[Row]: ...


class Ledger(Protocol):
    """The partner's balance as the ledger holds it (payouts: the one owner of the money
    rule; the gateway keeps no second fold of it)."""

    async def balances(self, partner_id: str) -> Balances:
        """``LedgerUnavailable`` when the ledger cannot answer now."""
        ...


class Invoices(Protocol):
    """Payouts' self-billed invoices (the gateway keeps none)."""

    async def invoice(self, statement_id: str, pdf: bool) -> tuple[int, bytes, str]:
        """A statement's invoice as payouts answers it: (status, body, media type);
        ``LedgerUnavailable`` when payouts cannot answer now."""
        ...


class LedgerUnavailable(Exception):
    """The ledger did not answer (or not as agreed): the caller may retry."""


class Views(Keys, Partners, Offers, Reports, Conversions, Statements, Postbacks, Protocol):
    """Every read of the gateway's own views."""


def offers_for(offers: Offers, partner_id: str, offer_id: str | None = None) -> list[dict[str, Any]]:
    """Active offers the partner may see, with its own terms (a relationship's custom
    payout and per-event payouts replace the offer's)."""
    rows = offers.offer_rows(partner_id, offer_id)
    return [_offer_for_partner(row) for row in rows if may_see(row["visibility"], row["approved"])]


def _relationship(row: Row) -> str:
    approved = row["approved"]
    if approved:
        return "approved"
    if row["application"]:
        return "pending"
    return "refused" if approved is False else "none"


def _offer_for_partner(row: Row) -> dict[str, Any]:
    custom_events = {event["name"]: event for event in (row["custom_events"] or [])}
    events = []
    for event in row["events"]:
        own = custom_events.get(event["name"], {}).get("payout")
        events.append({"name": event["name"], "payout": own or event["payout"]})
    return {
        "offer_id": row["offer_id"],
        "name": row["name"],
        "currency": row["currency"],
        "visibility": row["visibility"],
        "relationship": _relationship(row),
        "payout": row["custom_payout"] or row["payout"],
        "events": events,
    }
