"""Applications and partner users over HTTP, on the real service (PostgreSQL, broker).

The notifications service is not running here: every mail with a link stays *owed*
(recorded with the token that made it), which is where these tests read the links
from, as notifications would have been handed them. ``tests/e2e/test_onboarding.py``
runs the whole flow with the real notifications service and its mail.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from partners_fixtures import ADMIN_TOKEN, RunningPartners, assert_error, published_until

from afflux_contracts import PartnerCreated, PartnerStatusChanged
from afflux_contracts.partners import (
    PartnerApplied,
    PartnerUserActivated,
    PartnerUserInvited,
    PartnerUserPasswordReset,
    PartnerUserRemoved,
)
from afflux_infra.embedded import free_port
from afflux_infra.testing import SessionInfrastructure
from afflux_plumbing.auth import service_token_entry

GATEWAY_TOKEN = secrets.token_urlsafe(24)
NARROW_TOKEN = secrets.token_urlsafe(24)
NOW = datetime.now(UTC).isoformat()
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def onboarding_service(infra: SessionInfrastructure) -> AsyncIterator[RunningPartners]:
    """Partners with the gateway's token and a token without the sign-up scopes; mail is
    asked of a port nobody listens on (it stays owed)."""
    tokens = " ".join([
        service_token_entry("gateway", GATEWAY_TOKEN, ("partners.applications.create",
                                                       "partner_users.credentials",
                                                       "partner_users.write")),
        service_token_entry("other", NARROW_TOKEN, ("partners.apply",)),
    ])
    async with RunningPartners(
        infra.new_database(), infra.bootstrap_servers, AFFLUX_SERVICE_TOKENS=tokens,
        AFFLUX_NOTIFICATIONS_URL=f"http://127.0.0.1:{free_port()}", AFFLUX_PARTNERS_SERVICE_TOKEN="x" * 32,
        AFFLUX_PORTAL_URL="https://portal.example/portal", AFFLUX_PARTNERS_OWED_MAIL_INTERVAL=3600,
    ) as service:
        yield service


@pytest.fixture(scope="module")
async def gateway(onboarding_service: RunningPartners) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=onboarding_service.base_url,
                                 headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"}) as client:
        yield client


@pytest.fixture(scope="module")
async def staff(onboarding_service: RunningPartners) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=onboarding_service.base_url,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client


def sign_up(email: str, **overrides: Any) -> dict[str, Any]:
    return {"name": "Trail Reviews", "email": email, "company": "Trail GmbH", "website": "https://trail.example",
            "traffic_sources": ["website", "email"], "country": "de", "terms_accepted_at": NOW,
            "email_verified_at": NOW, **overrides}


def new_email() -> str:
    return f"lena-{secrets.token_hex(4)}@trail.example"


def owed_links(service: RunningPartners, recipient: str, template: str) -> list[str]:
    """The links of the mails owed to ``recipient`` (what notifications would send)."""
    schema = service.settings.db_schema
    with psycopg.connect(service.settings.database_url) as db:
        rows = db.execute(f"SELECT data FROM {schema}.owed_mails WHERE recipient = %s AND template = %s "
                          "ORDER BY owed_since", (recipient, template)).fetchall()
    return [row[0]["link"] for row in rows]


def token_of(link: str) -> str:
    assert link.startswith("https://portal.example/portal/password?token=")
    return parse_qs(urlsplit(link).query)["token"][0]


async def approved_owner(gateway: httpx.AsyncClient, staff: httpx.AsyncClient,
                         service: RunningPartners) -> tuple[str, str, str]:
    """A partner from the sign-up, approved, whose owner set a password: (partner_id, user_id, email)."""
    email = new_email()
    partner_id = (await gateway.post("/v1/applications", json=sign_up(email))).json()["partner_id"]
    approved = await staff.post(f"/v1/applications/{partner_id}/approve", json={"reason": "fits"})
    assert approved.status_code == 200, approved.text
    [link] = owed_links(service, email, "invitation")
    done = await gateway.post("/v1/partner-users/password", json={"token": token_of(link),
                                                                  "password": PASSWORD})
    assert done.status_code == 200, done.text
    return partner_id, done.json()["user"]["user_id"], email


async def test_the_same_address_twice_is_one_application_published_once_as_a_pending_partner(
    gateway: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    email = new_email()
    first = await gateway.post("/v1/applications", json=sign_up(email))
    again = await gateway.post("/v1/applications", json=sign_up(email.upper(), name="Another name"))

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json() == first.json()
    application = first.json()
    assert (application["status"], application["partner_status"], application["country"]) == (
        "pending", "pending", "DE")
    partner_id = application["partner_id"]
    records = await published_until(onboarding_service.settings.kafka_bootstrap_servers,
                                     lambda e: getattr(e.payload, "partner_id", None) == partner_id,
                                     lambda found: len(found) >= 2)
    created, applied = (r.envelope.payload for r in records)
    assert isinstance(created, PartnerCreated) and created.status.value == "pending"
    assert isinstance(applied, PartnerApplied)
    assert (applied.email, applied.company, applied.traffic_sources) == (email, "Trail GmbH", ("website",
                                                                                               "email"))
    assert len(records) == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"country": "Germany"}, "country"),
    ({"website": "ftp://trail.example"}, "website"),
    ({"traffic_sources": ["web", ""]}, "traffic_sources.1"),
    ({"name": "  "}, "name"),
])
async def test_a_bad_application_is_a_422_naming_the_field(
    gateway: httpx.AsyncClient, change: dict[str, Any], field: str,
) -> None:
    response = await gateway.post("/v1/applications", json={**sign_up(new_email()), **change})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_recording_an_application_needs_its_scope(onboarding_service: RunningPartners) -> None:
    async with httpx.AsyncClient(base_url=onboarding_service.base_url,
                                 headers={"Authorization": f"Bearer {NARROW_TOKEN}"}) as other:
        response = await other.post("/v1/applications", json=sign_up(new_email()))
        reviewing = await other.get("/v1/applications")
    assert_error(response, 403, "forbidden_scope")
    assert_error(reviewing, 403, "forbidden_scope")


async def test_approval_publishes_the_verdict_with_its_reason_and_invites_the_applicant_once(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    email = new_email()
    partner_id = (await gateway.post("/v1/applications", json=sign_up(email))).json()["partner_id"]
    pending = await staff.get("/v1/applications", params={"status": "pending", "limit": 500})
    assert partner_id in [a["partner_id"] for a in pending.json()["applications"]]

    approved = await staff.post(f"/v1/applications/{partner_id}/approve", json={"reason": "a fit for trails"})
    again = await staff.post(f"/v1/applications/{partner_id}/approve", json={"reason": "twice"})

    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["partner_status"], body["reason"]) == ("approved", "active",
                                                                        "a fit for trails")
    invitation = body["invitation"]
    assert invitation["mail"] == "owed"  # notifications is not running here
    assert (invitation["user"]["email"], invitation["user"]["role"], invitation["user"]["status"]) == (
        email, "owner", "invited")
    assert again.status_code == 200 and again.json()["invitation"] is None
    assert again.json()["reason"] == "a fit for trails"
    assert len(owed_links(onboarding_service, email, "invitation")) == 1
    records = await published_until(
        onboarding_service.settings.kafka_bootstrap_servers,
        lambda e: getattr(e.payload, "partner_id", None) == partner_id,
        lambda found: any(isinstance(r.envelope.payload, PartnerUserInvited) for r in found))
    verdicts = [r.envelope.payload for r in records if isinstance(r.envelope.payload, PartnerStatusChanged)]
    assert [(v.previous_status, v.status, v.reason) for v in verdicts] == [("pending", "active",
                                                                            "a fit for trails")]
    invited = [r.envelope.payload for r in records if isinstance(r.envelope.payload, PartnerUserInvited)]
    assert len(invited) == 1 and invited[0].email == email
    assert "token" not in invited[0].model_dump_json() and "hash" not in invited[0].model_dump_json()


async def test_a_declined_application_cannot_be_declined_after_approval(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    declined_id = (await gateway.post("/v1/applications", json=sign_up(new_email()))).json()["partner_id"]
    declined = await staff.post(f"/v1/applications/{declined_id}/decline", json={"reason": "no traffic yet"})
    assert declined.json()["status"] == "declined" and declined.json()["invitation"] is None
    partner_id, _, _ = await approved_owner(gateway, staff, onboarding_service)
    assert_error(await staff.post(f"/v1/applications/{partner_id}/decline"), 409, "already_approved",
                 "partner_id")
    assert_error(await staff.post(f"/v1/applications/{'0' * 32}/approve"), 404, "partner_not_found")


async def test_an_invitation_sets_a_password_once_and_signs_in_only_with_it(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    email = new_email()
    partner_id = (await gateway.post("/v1/applications", json=sign_up(email))).json()["partner_id"]
    await staff.post(f"/v1/applications/{partner_id}/approve")
    token = token_of(owed_links(onboarding_service, email, "invitation")[0])

    checked = await gateway.post("/v1/partner-users/tokens/check", json={"token": token})
    weak = await gateway.post("/v1/partner-users/password", json={"token": token, "password": "short"})
    done = await gateway.post("/v1/partner-users/password", json={"token": token, "password": PASSWORD})
    reused = await gateway.post("/v1/partner-users/password", json={"token": token,
                                                                    "password": PASSWORD + "!"})

    assert checked.status_code == 200 and checked.json()["purpose"] == "invitation"
    assert checked.json()["partner_id"] == partner_id
    assert_error(weak, 422, "weak_password", "password")
    assert done.status_code == 200 and done.json()["user"]["status"] == "active"
    assert_error(reused, 400, "invalid_token", "token")
    signed_in = await gateway.post("/v1/partner-users/sign-in", json={"email": email.upper(),
                                                                      "password": PASSWORD})
    assert signed_in.status_code == 200 and signed_in.json()["partner_id"] == partner_id
    for wrong in ({"email": email, "password": PASSWORD + "x"}, {"email": new_email(), "password": PASSWORD}):
        assert_error(await gateway.post("/v1/partner-users/sign-in", json=wrong), 401, "invalid_credentials")
    forged = await gateway.post("/v1/partner-users/tokens/check", json={"token": secrets.token_urlsafe(32)})
    assert_error(forged, 400, "invalid_token", "token")
    records = await published_until(
        onboarding_service.settings.kafka_bootstrap_servers,
        lambda e: getattr(e.payload, "partner_id", None) == partner_id,
        lambda found: any(isinstance(r.envelope.payload, PartnerUserActivated) for r in found))
    assert sum(isinstance(r.envelope.payload, PartnerUserActivated) for r in records) == 1


async def test_an_expired_link_is_410(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    email = new_email()
    partner_id = (await gateway.post("/v1/applications", json=sign_up(email))).json()["partner_id"]
    await staff.post(f"/v1/applications/{partner_id}/approve")
    token = token_of(owed_links(onboarding_service, email, "invitation")[0])
    settings = onboarding_service.settings
    with psycopg.connect(settings.database_url) as db:
        db.execute(f"UPDATE {settings.db_schema}.user_tokens SET expires_at = %s WHERE partner_id = %s",
                   (datetime.now(UTC) - timedelta(seconds=1), partner_id))
    response = await gateway.post("/v1/partner-users/password", json={"token": token, "password": PASSWORD})
    assert_error(response, 410, "expired_token", "token")


async def test_an_owner_invites_and_removes_users_and_a_removed_user_cannot_sign_in(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    partner_id, owner_id, _ = await approved_owner(gateway, staff, onboarding_service)
    member_email = new_email()
    invited = await gateway.post(f"/v1/partners/{partner_id}/users",
                                 json={"email": member_email, "name": "Max", "invited_by": owner_id})
    assert invited.status_code == 201, invited.text
    member_id = invited.json()["user"]["user_id"]
    token = token_of(owed_links(onboarding_service, member_email, "invitation")[0])
    await gateway.post("/v1/partner-users/password", json={"token": token, "password": PASSWORD})

    by_member = await gateway.post(f"/v1/partners/{partner_id}/users",
                                   json={"email": new_email(), "invited_by": member_id})
    assert_error(by_member, 409, "not_an_owner", "user_id")
    assert_error(await gateway.delete(f"/v1/partners/{partner_id}/users/{owner_id}"), 409, "last_owner",
                 "user_id")
    removed = await gateway.delete(f"/v1/partners/{partner_id}/users/{member_id}",
                                   params={"removed_by": owner_id})
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    users = (await staff.get(f"/v1/partners/{partner_id}/users")).json()["users"]
    assert [u["user_id"] for u in users] == [owner_id]
    refused = await gateway.post("/v1/partner-users/sign-in", json={"email": member_email,
                                                                    "password": PASSWORD})
    assert_error(refused, 401, "invalid_credentials")
    records = await published_until(
        onboarding_service.settings.kafka_bootstrap_servers,
        lambda e: getattr(e.payload, "partner_id", None) == partner_id,
        lambda found: any(isinstance(r.envelope.payload, PartnerUserRemoved) for r in found))
    [gone] = [r.envelope.payload for r in records if isinstance(r.envelope.payload, PartnerUserRemoved)]
    assert (gone.user_id, gone.removed_by) == (member_id, owner_id)


async def test_a_reset_link_replaces_the_password_and_says_nothing_of_unknown_addresses(
    gateway: httpx.AsyncClient, staff: httpx.AsyncClient, onboarding_service: RunningPartners,
) -> None:
    partner_id, user_id, email = await approved_owner(gateway, staff, onboarding_service)
    unknown = new_email()
    for address in (email, unknown):
        answer = await gateway.post("/v1/partner-users/password-reset", json={"email": address})
        assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    assert owed_links(onboarding_service, unknown, "password_reset") == []
    token = token_of(owed_links(onboarding_service, email, "password_reset")[-1])
    checked = await gateway.post("/v1/partner-users/tokens/check", json={"token": token})
    assert checked.json()["purpose"] == "reset"

    done = await gateway.post("/v1/partner-users/password", json={"token": token,
                                                                  "password": "a new passphrase"})

    assert done.status_code == 200, done.text
    old = await gateway.post("/v1/partner-users/sign-in", json={"email": email, "password": PASSWORD})
    new = await gateway.post("/v1/partner-users/sign-in", json={"email": email,
                                                                "password": "a new passphrase"})
    assert old.status_code == 401 and new.status_code == 200
    records = await published_until(
        onboarding_service.settings.kafka_bootstrap_servers,
        lambda e: getattr(e.payload, "partner_id", None) == partner_id,
        lambda found: any(isinstance(r.envelope.payload, PartnerUserPasswordReset) for r in found))
    [reset] = [r.envelope.payload for r in records if isinstance(r.envelope.payload,
                                                                 PartnerUserPasswordReset)]
    assert reset.user_id == user_id
