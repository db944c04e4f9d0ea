"""The public HTTP contract, as a newcomer would call it: a small admin client for the
cross-service tests (no shortcuts into the services' internals)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from afflux_infra.platform import Platform

ROOT = Path(__file__).resolve().parents[1]
"""The repository (``.tools/bin/uv`` runs the ``afflux`` CLI from there)."""

POSTBACK_TOKENS: dict[str, str] = {}
"""offer_id → postback token, for every offer these tests created."""


def postback_token(transaction_id: str) -> str:
    """The token of the offer a transaction_id names (its part after the 32 hex)."""
    return POSTBACK_TOKENS[transaction_id.split("-", 1)[1]]


@dataclass
class AdminApi:
    platform: Platform

    def _client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.platform.url(service), timeout=10,
                            headers={"Authorization": f"Bearer {self.platform.admin_token}"})

    def post(self, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._client(service) as client:
            response = client.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def put(self, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._client(service) as client:
            response = client.put(path, json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def get(self, service: str, path: str) -> httpx.Response:
        with self._client(service) as client:
            return client.get(path)

    def create_partner(self, name: str) -> str:
        return str(self.post("partners", "/v1/partners",
                             {"name": name, "email": f"{name.lower()}@partners.example"})["partner_id"])

    def create_cps_offer(self, percent: str, **extra: Any) -> str:
        """A shop paying ``percent`` of each sale. Unless ``events`` says otherwise, its one
        event allows duplicates: one click may lead to several orders, each credited once
        (the order id, not the click, is what makes a sale a duplicate)."""
        events = [{"name": "conversion", "payout": {"type": "cps", "percent": percent},
                   "allow_duplicates": True}]
        offer = self.post("partners", "/v1/offers", {
            "name": "Winter sale", "currency": "USD",
            "destination_url": "https://shop.example/landing?tid={transaction_id}&s1={sub1}",
            "payout": {"type": "cps", "percent": percent}, "events": events, **extra,
        })
        POSTBACK_TOKENS[offer["offer_id"]] = offer["postback_token"]
        return str(offer["offer_id"])

    def approve(self, offer_id: str, partner_id: str) -> None:
        self.put("partners", f"/v1/offers/{offer_id}/partners/{partner_id}", {"approved": True})

    def tracking_link(self, offer_id: str, partner_id: str) -> str:
        response = self.get("partners", f"/v1/offers/{offer_id}/partners/{partner_id}/tracking-link")
        assert response.status_code == 200, response.text
        return str(response.json()["url"])

    def sale(self, offer_id: str, partner_id: str, amount: str, currency: str, order_id: str) -> str:
        """A visitor follows the partner's link and buys for ``amount``: the conversion_id."""
        transaction_id = follow_tracking_link(self.tracking_link(offer_id, partner_id))
        response = httpx.post(f"{self.platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": amount, "currency": currency, "order_id": order_id,
            "token": postback_token(transaction_id)})
        assert response.status_code == 200, response.text
        return str(response.json()["conversion_id"])

    def balance(self, partner_id: str, currency: str = "USD") -> dict[str, Decimal]:
        response = self.get("payouts", f"/v1/partners/{partner_id}/balance")
        assert response.status_code == 200, response.text
        buckets = response.json()["balances"].get(currency, {})
        return {bucket: Decimal(amount) for bucket, amount in buckets.items()}

    def accrued(self, partner_id: str) -> Decimal:
        return self.balance(partner_id).get("accrued", Decimal(0))


def follow_tracking_link(url: str, sub1: str = "", timeout: float = 30.0,
                         user_agent: str | None = None) -> str:
    """Click the link like a browser would (without following the redirect) and return the
    click's transaction_id from the 302's Location. A link is 404 until the tracking
    service has seen the offer, the partner and the approval on the log. ``user_agent``:
    another visitor than the test process's (paid clicks count once per visitor)."""
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": user_agent} if user_agent else None
    while True:
        response = httpx.get(url, params={"sub1": sub1} if sub1 else None, follow_redirects=False,
                             headers=headers)
        if response.status_code == 302 and response.headers["location"].startswith("https://shop.example/"):
            return parse_qs(urlsplit(response.headers["location"]).query)["tid"][0]
        assert response.status_code in (302, 404), response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"tracking link never redirected to the offer: {response.status_code}")
        time.sleep(0.1)


def wait_for(check: Any, timeout: float = 60.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)

def replay_verifies(platform: Platform) -> None:
    """``afflux replay payouts --verify`` re-derives the live ledger from the log and exits 0."""
    env = {**os.environ, **platform.env()}
    result = subprocess.run([str(ROOT / ".tools/bin/uv"), "run", "--frozen", "--no-sync", "afflux", "replay",
                             "payouts", "--verify"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
