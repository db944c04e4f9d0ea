"""The other services' APIs, as the gateway calls them with its own service token
(``AFFLUX_GATEWAY_SERVICE_TOKEN``), scoped to exactly what it does: ``partners.apply``
(a partner's application for an offer) and ``payouts.balance.read`` (a partner's
balance). The gateway never holds the admin token.

A service that cannot be reached, or answers 5xx, is ``Unavailable``: the gateway then
answers 503 with ``Retry-After`` (it never guesses an answer of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from afflux_gateway.application.reads import Balances, LedgerUnavailable


class PartnersUnavailable(Exception):
    """The partners API could not be reached or failed: the caller may retry."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _client(base_url: str, token: str, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {token}"}
    )


class PartnersClient:
    """``POST /v1/offers/{offer_id}/partners/{partner_id}/apply`` for the partner its key names."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._client = _client(base_url, token, timeout)

    async def apply(self, offer_id: str, partner_id: str) -> Answer:
        try:
            response = await self._client.post(
                f"/v1/offers/{quote(offer_id, safe='')}/partners/{quote(partner_id, safe='')}/apply", json={}
            )
        except httpx.HTTPError as error:
            raise PartnersUnavailable(f"the partners API did not answer: {error}") from error
        if response.status_code >= 500:
            raise PartnersUnavailable(f"the partners API answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        return Answer(response.status_code, body if isinstance(body, dict) else {})

    async def close(self) -> None:
        await self._client.aclose()


class _Buckets(BaseModel):
    accrued: str
    pending: str
    payable: str
    paid: str


class _PartnerBalances(BaseModel):
    partner_id: str
    balances: dict[str, _Buckets]


class PayoutsClient:
    """The ``Ledger``: ``GET /v1/partners/{partner_id}/balance`` of payouts, as it answers."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._client = _client(base_url, token, timeout)

    async def balances(self, partner_id: str) -> Balances:
        try:
            response = await self._client.get(f"/v1/partners/{quote(partner_id, safe='')}/balance")
        except httpx.HTTPError as error:
            raise LedgerUnavailable(f"payouts did not answer: {error}") from error
        if response.status_code != 200:
            raise LedgerUnavailable(f"payouts answered {response.status_code}: {response.text[:200]}")
        try:
            answer = _PartnerBalances.model_validate_json(response.content)
        except ValidationError as error:
            raise LedgerUnavailable(f"payouts answered a balance of another shape: {error}") from error
        if answer.partner_id != partner_id:
            raise LedgerUnavailable(f"payouts answered the balance of {answer.partner_id!r}")
        return {currency: buckets.model_dump() for currency, buckets in answer.balances.items()}

    async def close(self) -> None:
        await self._client.aclose()
