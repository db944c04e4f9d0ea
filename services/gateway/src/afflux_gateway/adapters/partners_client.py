"""The partners API, as the gateway calls it: a partner's application for an offer.

The gateway holds the admin token and speaks for the partner its key names; the
partners service records the application (a pending relationship) and puts it on
the log, from where the gateway's own view learns of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class PartnersUnavailable(Exception):
    """The partners API could not be reached or failed: the caller may retry."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class PartnersClient:
    def __init__(self, base_url: str, admin_token: str, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {admin_token}"}
        )

    async def apply(self, offer_id: str, partner_id: str) -> Answer:
        try:
            response = await self._client.post(f"/v1/offers/{offer_id}/partners/{partner_id}/apply", json={})
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
