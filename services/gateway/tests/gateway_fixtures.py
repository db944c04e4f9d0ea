"""A restartable gateway service for the tests (and the real payouts service it asks for
balances), and builders of the events it reads (as the partners, tracking, attribution,
payouts and postbacks services publish them)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import httpx

from afflux_contracts import (
    ClickRecorded,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    Envelope,
    Event,
    Money,
    OfferCreated,
    PartnerApiKeyIssued,
    PartnerApiKeyRevoked,
    PartnerCreated,
    RejectionReason,
    RelationshipSet,
    Terms,
    Visibility,
)
from afflux_contracts.partners import PayoutType
from afflux_gateway.entrypoints.main import build
from afflux_gateway.settings import GatewaySettings
from afflux_infra.platform import GATEWAY_SCOPES
from afflux_infra.testing import RunningService
from afflux_plumbing.auth import service_token_entry
from afflux_plumbing.publish import Publisher

ADMIN_TOKEN = "gateway-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERVICE_TOKEN = "gateway-test-service-token"
SESSION_SECRET = "gateway-test-session-secret-0123456789abcdef"
DAY = datetime(2026, 3, 2, tzinfo=UTC)
TRACKING_URL = "https://trk.example"
PROFILE_KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
"""Seals partners' tax and payment details (a Fernet key): payouts reads them to invoice."""


class SessionInfra(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def wrap(event: Event) -> Envelope[Event]:
    return Envelope.wrap(event, producer="test")


def new_key() -> str:
    return f"afx_live_{secrets.token_urlsafe(32)}"


def partner(partner_id: str, name: str) -> Envelope[Event]:
    return wrap(PartnerCreated(partner_id=partner_id, name=name, email=f"{partner_id}@example.com"))


def key_issued(partner_id: str, api_key: str, key_id: str | None = None) -> Envelope[Event]:
    return wrap(
        PartnerApiKeyIssued(
            partner_id=partner_id,
            key_id=key_id or f"key_{secrets.token_hex(8)}",
            key_sha256=hashlib.sha256(api_key.encode()).hexdigest(),
            prefix=api_key[:12],
            issued_at=DAY,
        )
    )


def key_revoked(partner_id: str, key_id: str) -> Envelope[Event]:
    return wrap(PartnerApiKeyRevoked(partner_id=partner_id, key_id=key_id, revoked_at=DAY))


def offer(
    offer_id: str, visibility: Visibility, *, amount: str = "5.00", name: str = "Offer"
) -> Envelope[Event]:
    return wrap(
        OfferCreated(
            offer_id=offer_id,
            name=name,
            destination_url="https://shop.example/?tid={transaction_id}",
            visibility=visibility,
            currency="USD",
            payout=Terms(type=PayoutType.CPA, amount=Decimal(amount)),
            revenue=Terms(type=PayoutType.CPA, amount=Decimal("8.00")),
        )
    )


def relationship(
    offer_id: str, partner_id: str, *, approved: bool = True, payout: str | None = None
) -> Envelope[Event]:
    terms = Terms(type=PayoutType.CPA, amount=Decimal(payout)) if payout else None
    return wrap(RelationshipSet(offer_id=offer_id, partner_id=partner_id, approved=approved, payout=terms))


def click(
    transaction_id: str,
    offer_id: str,
    partner_id: str,
    *,
    at: datetime = DAY,
    unique: bool = True,
    **subs: str,
) -> Envelope[Event]:
    return wrap(
        ClickRecorded(
            transaction_id=transaction_id,
            offer_id=offer_id,
            partner_id=partner_id,
            clicked_at=at,
            unique=unique,
            **subs,
        )
    )


def attributed(
    transaction_id: str,
    offer_id: str,
    partner_id: str,
    *,
    payout: str = "5.00",
    revenue: str = "8.00",
    at: datetime = DAY,
    status: ConversionStatus = ConversionStatus.APPROVED,
    conversion_id: str | None = None,
    **extra: Any,
) -> Envelope[Event]:
    return wrap(
        ConversionAttributed(
            conversion_id=conversion_id or new_id("conv"),
            transaction_id=transaction_id,
            partner_id=partner_id,
            offer_id=offer_id,
            event="conversion",
            payout=Money(amount=Decimal(payout), currency="USD"),
            revenue=Money(amount=Decimal(revenue), currency="USD"),
            status=status,
            clicked_at=at,
            converted_at=at + timedelta(minutes=5),
            **extra,
        )
    )


def rejected(
    transaction_id: str,
    offer_id: str,
    partner_id: str,
    *,
    at: datetime = DAY,
    conversion_id: str | None = None,
    reason: RejectionReason = RejectionReason.DUPLICATE,
) -> Envelope[Event]:
    return wrap(
        ConversionRejected(
            conversion_id=conversion_id or new_id("conv"),
            reason=reason,
            message="order already credited",
            transaction_id=transaction_id,
            partner_id=partner_id,
            offer_id=offer_id,
            converted_at=at + timedelta(minutes=6),
        )
    )


async def publish(log: Publisher, *envelopes: Envelope[Any]) -> None:
    for envelope in envelopes:
        await log.publish(envelope)


class RunningPayouts(RunningService[Any]):
    """The real payouts service (the ledger the gateway's balance is), on its own database;
    it admits the gateway's service token for the balance."""

    headers = ADMIN

    def __init__(self, database_url: str, kafka_bootstrap: str, group_prefix: str = "") -> None:
        from afflux_payouts.entrypoints.main import build as build_payouts  # only where payouts is needed
        from afflux_payouts.settings import PayoutsSettings

        super().__init__(
            PayoutsSettings, build_payouts, database_url, kafka_bootstrap, group_prefix,
            AFFLUX_ADMIN_TOKEN=ADMIN_TOKEN, AFFLUX_PAYOUTS_CLOSE_INTERVAL=0,
            AFFLUX_PROFILE_KEYS=PROFILE_KEY, AFFLUX_PAYOUTS_HOLD_INTERVAL="0.2",
            AFFLUX_INVOICE_ISSUER_NAME="Afflux Network SAS", AFFLUX_INVOICE_ISSUER_COUNTRY="FR",
            AFFLUX_INVOICE_ISSUER_ADDRESS="1 rue de la Paix, 75002 Paris",
            AFFLUX_INVOICE_ISSUER_VAT_ID="FR40303265045",
            AFFLUX_SERVICE_TOKENS=service_token_entry("gateway", SERVICE_TOKEN, GATEWAY_SCOPES),
        )

    def balance(self, partner_id: str) -> dict[str, Any]:
        """Payouts' answer, as an admin reads it (blocking: from a thread)."""
        return self.get_json(f"/v1/partners/{partner_id}/balance")


class RunningGateway(RunningService[GatewaySettings]):
    """The gateway in the test's event loop, on one database; a test's ``settings`` go over
    its defaults (``port``: one the test must know first, for links)."""

    def __init__(
        self, database_url: str, kafka_bootstrap: str, group_prefix: str = "", **settings: Any
    ) -> None:
        super().__init__(GatewaySettings, build, database_url, kafka_bootstrap, group_prefix, **{
            "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, "AFFLUX_TRACKING_URL": TRACKING_URL,
            "AFFLUX_GATEWAY_SESSION_SECRET": SESSION_SECRET, "AFFLUX_GATEWAY_SERVICE_TOKEN": SERVICE_TOKEN,
            **settings,
        })

    async def aget(self, path: str, api_key: str | bytes | None = None, **params: Any) -> httpx.Response:
        """A GET from the test's own loop as the partner of ``api_key`` (none: anonymous)."""
        return await self.fetch(path, headers=key_header(api_key), **params)

    def get(self, path: str, api_key: str | None = None, **params: Any) -> httpx.Response:
        """A blocking GET as the partner of ``api_key`` (from a thread: ``eventually``)."""
        return super().get(path, headers=key_header(api_key), **params)


def key_header(api_key: str | bytes | None) -> dict[str, Any]:
    """The partner's credential on a request (none: anonymous)."""
    return {"X-Api-Key": api_key} if api_key is not None else {}
