"""Staff over the real processes: an owner creates a manager and an analyst in the console;
the manager's session creates an offer in partners (its event on the log names the
manager as its actor); the analyst may read it and not write (403 forbidden_role); a
token revoked in the console is refused by partners within seconds; and the console's
audit trail names each person's actions."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest
from afflux_log import envelopes_on

from afflux_contracts import PARTNERS
from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

PASSWORD = "a staff pass phrase for e2e"
REVOKED_WITHIN = 10.0
"""Seconds a revocation may take to reach partners (its staff view's lag on the log)."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_staff(console: httpx.AsyncClient, admin: str, role: str) -> tuple[str, str]:
    """A staff user of ``role``, signed in: (user_id, session token)."""
    email = f"{role}-{secrets.token_hex(3)}@network.example"
    created = await console.post(
        "/v1/staff/users",
        headers=bearer(admin),
        json={"email": email, "name": role.title(), "role": role, "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    session = await console.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD})
    assert session.status_code == 201, session.text
    return created.json()["user_id"], session.json()["token"]


def offer_body() -> dict[str, Any]:
    return {
        "name": "Staff-made offer",
        "destination_url": "https://shop.example/?t={transaction_id}",
        "currency": "USD",
        "payout": {"type": "cpa", "amount": "4.00"},
    }


async def audit_of(console: httpx.AsyncClient, admin: str, **query: str) -> list[dict[str, Any]]:
    page = await console.get("/v1/audit", headers=bearer(admin), params=query)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def until(read: Any, done: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await read()
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {found!r}")
        await asyncio.sleep(0.1)


async def test_staff_act_in_their_roles_everywhere_and_the_audit_names_who_did_what(
    platform: Platform,
) -> None:
    admin = platform.admin_token
    async with (
        httpx.AsyncClient(base_url=platform.services["console"].url, timeout=30) as console,
        httpx.AsyncClient(base_url=platform.services["partners"].url, timeout=30) as partners,
    ):
        manager_id, manager = await new_staff(console, admin, "manager")
        analyst_id, analyst = await new_staff(console, admin, "analyst")

        created = await partners.post("/v1/offers", headers=bearer(manager), json=offer_body())
        assert created.status_code == 201, created.text
        offer_id = created.json()["offer_id"]
        refused = await partners.post("/v1/offers", headers=bearer(analyst), json=offer_body())
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role", (
            refused.text
        )
        assert (await partners.get(f"/v1/offers/{offer_id}", headers=bearer(analyst))).status_code == 200

        on_log = [
            e
            for e in await envelopes_on(platform.infrastructure.bootstrap_servers, PARTNERS)
            if getattr(e.payload, "offer_id", None) == offer_id
        ]
        assert [e.event_type for e in on_log] == ["OfferCreated"]
        assert on_log[0].actor is not None
        assert (on_log[0].actor.kind, on_log[0].actor.id, on_log[0].actor.role) == (
            "staff",
            manager_id,
            "manager",
        )

        issued = await console.post(
            "/v1/staff/tokens",
            headers=bearer(manager),
            json={"name": "sync job", "scopes": ["partners.read"]},
        )
        assert issued.status_code == 201, issued.text
        token, token_id = issued.json()["token"], issued.json()["token_id"]
        assert (await partners.get("/v1/offers", headers=bearer(token))).status_code == 200
        revoked_at = time.monotonic()
        assert (
            await console.delete(f"/v1/staff/tokens/{token_id}", headers=bearer(manager))
        ).status_code == 200

        async def status() -> int:
            return (await partners.get("/v1/offers", headers=bearer(token))).status_code

        await until(status, lambda code: code == 401, REVOKED_WITHIN)
        print(f"revoked token refused by partners {time.monotonic() - revoked_at:.2f}s after the revocation")

        managers = await until(
            lambda: audit_of(console, admin, actor=manager_id),
            lambda items: {"OfferCreated", "StaffTokenRevoked"} <= {i["action"] for i in items},
        )
        offer = next(item for item in managers if item["action"] == "OfferCreated")
        assert (offer["subject"], offer["role"], offer["topic"]) == (offer_id, "manager", PARTNERS.name)
        assert [i["action"] for i in managers][:3] == [
            "StaffTokenRevoked",
            "StaffTokenIssued",
            "OfferCreated",
        ]
        analysts = await audit_of(console, admin, actor=analyst_id)
        assert [i["action"] for i in analysts] == ["StaffSessionStarted"], "a refused write is no event"
        by_subject = await audit_of(console, admin, subject=offer_id)
        assert [(i["action"], i["actor"]) for i in by_subject] == [("OfferCreated", manager_id)]
        assert_error = await console.get("/v1/audit", headers=bearer(analyst))
        assert assert_error.status_code == 200, "every role reads the audit trail"
