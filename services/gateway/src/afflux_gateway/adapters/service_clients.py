"""The other services' APIs, as the gateway calls them with its own service token
(``AFFLUX_GATEWAY_SERVICE_TOKEN``), scoped to exactly what it does: ``partners.apply``
(a partner's application for an offer), ``payouts.balance.read`` (a partner's
balance), ``partners.applications.create`` (a verified sign-up),
``partner_users.credentials`` and ``partner_users.write`` (the portal's users) and
``notifications.send`` (the verification mail). The gateway never holds the admin token.

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
from afflux_gateway.application.signup import ApplicationRefused


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
        path = f"/v1/offers/{quote(offer_id, safe='')}/partners/{quote(partner_id, safe='')}/apply"
        return await self.call("POST", path, {})

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None) -> Answer:
        """Any other partners route the gateway's token may use (applications from the
        sign-up, partner users and their credentials): its status and JSON body;
        ``PartnersUnavailable`` when partners cannot answer (no answer, or 5xx)."""
        try:
            response = await self._client.request(method, path, json=body, params=params)
        except httpx.HTTPError as error:
            raise PartnersUnavailable(f"the partners API did not answer: {error}") from error
        if response.status_code >= 500:
            raise PartnersUnavailable(f"the partners API answered {response.status_code}")
        try:
            found = response.json()
        except ValueError:
            found = {}
        return Answer(response.status_code, found if isinstance(found, dict) else {})

    async def close(self) -> None:
        await self._client.aclose()


class MailUnavailable(Exception):
    """Notifications did not take the mail: the caller says "try again"."""


class NotificationsClient:
    """``POST /v1/messages`` of notifications (scope ``notifications.send``): the email
    verification mail, whose link must not travel on the log."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._client = _client(base_url, token, timeout)

    async def send(self, template: str, to: str, data: dict[str, Any], key: str) -> None:
        try:
            response = await self._client.post("/v1/messages", json={"template": template, "to": to,
                                                                     "data": data},
                                               headers={"Idempotency-Key": key})
        except httpx.HTTPError as error:
            raise MailUnavailable(f"notifications did not answer: {error}") from error
        if response.status_code != 202:
            raise MailUnavailable(f"notifications answered {response.status_code}: {response.text[:200]}")

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

    async def invoice(self, statement_id: str, pdf: bool) -> tuple[int, bytes, str]:
        """A statement's invoice as payouts answers it: (status, body, media type)."""
        path = f"/v1/statements/{quote(statement_id, safe='')}/invoice" + (".pdf" if pdf else "")
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as error:
            raise LedgerUnavailable(f"payouts did not answer: {error}") from error
        if response.status_code >= 500:
            raise LedgerUnavailable(f"payouts answered {response.status_code}")
        return response.status_code, response.content, response.headers.get("content-type", "")

    async def close(self) -> None:
        await self._client.aclose()


class PartnersApplications:
    """``Applications``: a verified sign-up recorded by partners (``POST /v1/applications``)."""

    def __init__(self, partners: PartnersClient) -> None:
        self.partners = partners

    async def record(self, application: dict[str, Any]) -> str:
        answer = await self.partners.call("POST", "/v1/applications", application)
        if answer.status in (200, 201, 202) and isinstance(answer.body.get("partner_id"), str):
            return str(answer.body["partner_id"])
        error = answer.body.get("error")
        found = error if isinstance(error, dict) else {}
        raise ApplicationRefused(str(found.get("message", f"partners answered {answer.status}")),
                                 found.get("field"))
