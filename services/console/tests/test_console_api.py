"""The console's API over real PostgreSQL and a real broker: staff users, sign-in and
sign-out, the second factor, API tokens, and what reaches the staff log.

A credential the console hands out is accepted by the console through the same staff
view every service keeps (it reads the staff log): so these tests also prove the trip
issue -> log -> view, and revocation -> log -> refusal."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx
import pyotp
from console_fixtures import (
    PASSWORD,
    RunningConsole,
    assert_error,
    bearer,
    refused_soon,
    signed_in,
    staff_log,
    until,
    user_body,
)


def email() -> str:
    return f"staff-{secrets.token_hex(4)}@network.example"


async def new_user(owner: httpx.AsyncClient, role: str = "manager", **more: Any) -> dict[str, Any]:
    response = await owner.post("/v1/staff/users", json=user_body(email(), role, **more))
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def test_an_owner_creates_a_user_who_signs_in_and_acts_in_their_role(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "manager")
    assert user["role"] == "manager" and not user["disabled"] and "password" not in user
    token = await signed_in(client, user["email"])
    me = await client.get("/v1/staff/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert (me.json()["kind"], me.json()["id"], me.json()["role"]) == ("staff", user["user_id"], "manager")
    assert "partners.write" in me.json()["scopes"] and "staff.manage" not in me.json()["scopes"]
    assert_error(await client.get("/v1/staff/users", headers=bearer(token)), 403, "forbidden_role")


async def test_a_wrong_password_and_an_unknown_email_are_the_same_401(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "analyst")
    wrong = await client.post(
        "/v1/staff/sessions", json={"email": user["email"], "password": "not it at all!"}
    )
    unknown = await client.post("/v1/staff/sessions", json={"email": email(), "password": PASSWORD})
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()


async def test_failed_sign_ins_for_an_email_are_refused_429_even_with_the_right_password(
    owner: httpx.AsyncClient, client: httpx.AsyncClient, console_service: RunningConsole
) -> None:
    user = await new_user(owner, "analyst")
    for _ in range(console_service.settings.signin_failures):
        assert_error(
            await client.post("/v1/staff/sessions", json={"email": user["email"], "password": "x" * 12}),
            401,
            "invalid_credentials",
        )
    throttled = await client.post("/v1/staff/sessions", json={"email": user["email"], "password": PASSWORD})
    assert_error(throttled, 429, "too_many_failures")
    assert int(throttled.headers["Retry-After"]) > 0


async def test_signing_out_ends_the_session_everywhere(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "finance")
    token = await signed_in(client, user["email"])
    assert (await client.get("/v1/staff/me", headers=bearer(token))).status_code == 200
    out = await client.delete("/v1/staff/sessions/current", headers=bearer(token))
    assert out.status_code == 204, out.text
    await refused_soon(client, token)


async def test_a_disabled_user_is_refused_and_cannot_sign_in(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "manager")
    token = await signed_in(client, user["email"])
    disabled = await owner.patch(f"/v1/staff/users/{user['user_id']}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True, disabled.text
    await refused_soon(client, token)
    assert_error(
        await client.post("/v1/staff/sessions", json={"email": user["email"], "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    enabled = await owner.patch(f"/v1/staff/users/{user['user_id']}", json={"disabled": False})
    assert enabled.status_code == 200
    await refused_soon(client, token)  # the sessions it had ended with the disabling
    assert (
        await client.get("/v1/staff/me", headers=bearer(await signed_in(client, user["email"])))
    ).status_code == 200


async def test_an_owner_may_not_disable_or_demote_themselves(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "owner")
    token = await signed_in(client, user["email"])
    for change in ({"disabled": True}, {"role": "analyst"}):
        refused = await client.patch(f"/v1/staff/users/{user['user_id']}", json=change, headers=bearer(token))
        assert_error(refused, 409, "self_lockout")
    renamed = await client.patch(
        f"/v1/staff/users/{user['user_id']}", json={"name": "Olga Owner"}, headers=bearer(token)
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Olga Owner"


async def test_a_new_role_applies_at_once_to_a_live_session(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "analyst")
    token = await signed_in(client, user["email"])
    body = {"name": "closer", "scopes": ["statements.close"]}
    assert_error(
        await client.post("/v1/staff/tokens", json=body, headers=bearer(token)), 422, "scope_not_allowed"
    )
    assert (
        await owner.patch(f"/v1/staff/users/{user['user_id']}", json={"role": "finance"})
    ).status_code == 200

    async def role() -> str:
        return str((await client.get("/v1/staff/me", headers=bearer(token))).json()["role"])

    await until(role, lambda now: now == "finance")
    issued = await client.post("/v1/staff/tokens", json=body, headers=bearer(token))
    assert issued.status_code == 201, issued.text


async def test_an_api_token_is_shown_once_works_within_its_scopes_and_stops_when_revoked(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "manager")
    session = await signed_in(client, user["email"])
    issued = await client.post(
        "/v1/staff/tokens", json={"name": "nightly export", "scopes": ["audit.read"]}, headers=bearer(session)
    )
    assert issued.status_code == 201, issued.text
    token, token_id = issued.json()["token"], issued.json()["token_id"]
    assert issued.json()["user_id"] == user["user_id"] and issued.json()["scopes"] == ["audit.read"]
    assert (await client.get("/v1/audit", headers=bearer(token))).status_code == 200
    assert_error(await client.get("/v1/staff/me", headers=bearer(token)), 403, "forbidden_scope")
    listed = await client.get("/v1/staff/tokens", headers=bearer(session))
    assert [t["token_id"] for t in listed.json()["tokens"]] == [token_id]
    assert all("token" not in t for t in listed.json()["tokens"])
    assert_error(
        await client.get("/v1/staff/tokens?all=true", headers=bearer(session)), 403, "forbidden_role"
    )
    revoked = await client.delete(f"/v1/staff/tokens/{token_id}", headers=bearer(session))
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    await refused_soon(client, token, "/v1/audit")


async def test_a_user_with_a_second_factor_signs_in_with_its_code(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "finance")
    session = await signed_in(client, user["email"])
    enrolled = await client.post(f"/v1/staff/users/{user['user_id']}/totp", headers=bearer(session))
    assert enrolled.status_code == 200, enrolled.text
    code = pyotp.parse_uri(enrolled.json()["otpauth_uri"])
    assert isinstance(code, pyotp.TOTP)
    assert_error(
        await client.post(
            f"/v1/staff/users/{user['user_id']}/totp/confirm",
            json={"code": "000000"},
            headers=bearer(session),
        ),
        422,
        "invalid_code",
    )
    confirmed = await client.post(
        f"/v1/staff/users/{user['user_id']}/totp/confirm", json={"code": code.now()}, headers=bearer(session)
    )
    assert confirmed.status_code == 200 and confirmed.json()["second_factor"] is True
    assert_error(
        await client.post("/v1/staff/sessions", json={"email": user["email"], "password": PASSWORD}),
        401,
        "totp_required",
    )
    again = await signed_in(client, user["email"], totp=code.now())
    assert (await client.get("/v1/staff/me", headers=bearer(again))).status_code == 200
    other = await new_user(owner, "analyst")
    assert_error(
        await client.post(f"/v1/staff/users/{other['user_id']}/totp", headers=bearer(session)),
        403,
        "forbidden_user",
    )


async def test_the_staff_log_names_credentials_by_hash_and_carries_no_secret(
    owner: httpx.AsyncClient, client: httpx.AsyncClient, console_service: RunningConsole
) -> None:
    user = await new_user(owner, "analyst")
    token = await signed_in(client, user["email"])
    await client.delete("/v1/staff/sessions/current", headers=bearer(token))
    digest = hashlib.sha256(token.encode()).hexdigest()

    async def mine() -> list[Any]:
        return [
            e
            for e in await staff_log(console_service.settings.kafka_bootstrap_servers)
            if e.payload.user_id == user["user_id"]
        ]

    events = await until(mine, lambda found: len(found) >= 3)
    assert [e.event_type for e in events] == ["StaffUserCreated", "StaffSessionStarted", "StaffSessionEnded"]
    text = " ".join(e.model_dump_json() for e in events)
    assert token not in text and PASSWORD not in text and "argon2" not in text
    assert events[1].payload.token_sha256 == digest == events[2].payload.token_sha256
    assert events[0].actor is not None and events[0].actor.kind == "admin"
    assert events[1].actor is not None and (events[1].actor.kind, events[1].actor.id) == (
        "staff",
        user["user_id"],
    )


async def test_the_audit_trail_names_who_did_what_newest_first(
    owner: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    user = await new_user(owner, "manager")
    token = await signed_in(client, user["email"])
    await client.post(
        "/v1/staff/tokens", json={"name": "reports", "scopes": ["audit.read"]}, headers=bearer(token)
    )

    async def entries() -> list[dict[str, Any]]:
        page = await owner.get("/v1/audit", params={"actor": user["user_id"]})
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    found = await until(entries, lambda items: len(items) >= 2)
    assert [item["action"] for item in found] == ["StaffTokenIssued", "StaffSessionStarted"]
    assert {item["role"] for item in found} == {"manager"}
    created = await owner.get("/v1/audit", params={"subject": user["user_id"], "limit": 1})
    assert created.json()["next"] is not None
    rest = await owner.get("/v1/audit", params={"subject": user["user_id"], "after": created.json()["next"]})
    actions = [item["action"] for item in created.json()["items"] + rest.json()["items"]]
    assert actions[-1] == "StaffUserCreated" and rest.json()["items"][-1]["actor"] == "admin"
    assert_error(await owner.get("/v1/audit", params={"since": "yesterday"}), 422, "invalid_request")
