"""Sign-up and partner users at the gateway's edge, with the real partners and
notifications services beside it (in this test's loop, on the module's broker): bad
input named, floods refused, links forged or expired refused, one application per
address, a removed user's session ended, a reset ending the sessions before it, the owner's
tax and payment details page (a bad IBAN named in the form; a member only reads).

Mail is read from notifications' embedded catcher (``GET /v1/mail``), as a person
would read their inbox.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from gateway_fixtures import ADMIN, ADMIN_TOKEN, PROFILE_KEY, SERVICE_TOKEN, SESSION_SECRET, RunningGateway

from afflux_gateway.entrypoints.session import SessionKeys, sign_link
from afflux_infra.embedded import free_port
from afflux_infra.platform import GATEWAY_SCOPES, PARTNERS_SCOPES
from afflux_infra.testing import RunningService, SessionInfrastructure
from afflux_plumbing.auth import service_token_entry

PARTNERS_TOKEN = secrets.token_urlsafe(24)
PASSWORD = "a long enough passphrase"
LINK = re.compile(r"https?://\S+/portal/(?:signup/verify|password)\?token=[\w.\-]+")


class Platform:
    def __init__(self, gateway: RunningGateway, partners: str, notifications: str) -> None:
        self.gateway, self.partners, self.notifications = gateway, partners, notifications

    async def mail_to(self, address: str, subject: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        """The links of the mails to ``address`` whose subject has ``subject`` (waits for ``count``)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.notifications, headers=ADMIN) as client:
            while True:
                mail = (await client.get("/v1/mail", params={"limit": 500})).json()["mail"]
                found = [m for m in mail if address.lower() in [r.lower() for r in m["recipients"]]
                         and subject in (m["subject"] or "")]
                if len(found) >= count:
                    links = [LINK.search(m["text"] or "") for m in found]
                    return [link.group(0) for link in links if link]
                assert time.monotonic() < deadline, f"no {subject!r} mail to {address}: {mail}"
                await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def platform(infra: SessionInfrastructure, gateway_broker: str) -> AsyncIterator[Platform]:
    from afflux_notifications.entrypoints.main import build as build_notifications
    from afflux_notifications.settings import NotificationsSettings
    from afflux_partners.entrypoints.main import build as build_partners
    from afflux_partners.settings import PartnersSettings

    tokens = " ".join((service_token_entry("gateway", SERVICE_TOKEN, GATEWAY_SCOPES),
                       service_token_entry("partners", PARTNERS_TOKEN, PARTNERS_SCOPES)))
    prefix = f"test-{secrets.token_hex(4)}"
    common = {"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, "AFFLUX_SERVICE_TOKENS": tokens}
    async with AsyncExitStack() as stack:
        notifications_url = (await stack.enter_async_context(RunningService(
            NotificationsSettings, build_notifications, infra.new_database(), gateway_broker, prefix,
            **common, AFFLUX_NOTIFICATIONS_RETRY_FIRST=0.1))).base_url
        gateway_port = free_port()
        portal = f"http://127.0.0.1:{gateway_port}/portal"
        partners_url = (await stack.enter_async_context(RunningService(
            PartnersSettings, build_partners, infra.new_database(), gateway_broker, prefix,
            **common, AFFLUX_NOTIFICATIONS_URL=notifications_url, AFFLUX_PORTAL_URL=portal,
            AFFLUX_PROFILE_KEYS=PROFILE_KEY,
            AFFLUX_PARTNERS_SERVICE_TOKEN=PARTNERS_TOKEN, AFFLUX_PARTNERS_OWED_MAIL_INTERVAL=0.5))).base_url
        gateway = RunningGateway(
            infra.new_database(), gateway_broker, prefix, AFFLUX_PARTNERS_URL=partners_url,
            AFFLUX_NOTIFICATIONS_URL=notifications_url, AFFLUX_SERVICE_TOKENS=tokens,
            AFFLUX_PORTAL_URL=portal,
            AFFLUX_TRUSTED_PROXIES="127.0.0.1", AFFLUX_GATEWAY_SIGNUP_ADDRESS_LIMIT=3,
            AFFLUX_GATEWAY_SIGNUP_EMAIL_LIMIT=2, AFFLUX_GATEWAY_FAILURE_LIMIT=5, port=gateway_port)
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        yield Platform(gateway, partners_url, notifications_url)


def form(**fields: Any) -> dict[str, Any]:
    return {"name": "Trail Reviews", "email": new_email(), "company": "Trail GmbH",
            "website": "https://trail.example", "traffic_sources": ["website", "email"], "country": "de",
            "accept_terms": True, **fields}


def new_email() -> str:
    return f"lena-{secrets.token_hex(4)}@trail.example"


_CLIENTS = itertools.count(1)


def from_address() -> dict[str, str]:
    """A client of its own behind the trusted balancer (127.0.0.1), so each test counts alone
    (a new address each call: a random one could be the flood test's, already over its limit)."""
    n = next(_CLIENTS)
    return {"X-Forwarded-For": f"198.51.{100 + n // 250}.{n % 250 + 1}"}


async def sign_up(platform: Platform, **fields: Any) -> httpx.Response:
    async with platform.gateway.client() as client:
        return await client.post("/v1/signup", json=form(**fields), headers=from_address())


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"email": None}, "email"),
    ({"accept_terms": False}, "accept_terms"),
    ({"country": "DEU"}, "country"),
    ({"website": "javascript:alert(1)"}, "website"),
    ({"traffic_sources": ["web", "x" * 61]}, "traffic_sources.1"),
    ({"coupon": "FREE"}, "coupon"),
])
async def test_bad_sign_up_input_is_a_422_naming_the_field(
    platform: Platform, change: dict[str, Any], field: str,
) -> None:
    response = await sign_up(platform, **change)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_flood_from_one_address_is_429_with_retry_after_and_others_still_sign_up(
    platform: Platform,
) -> None:
    flooder = from_address()
    async with platform.gateway.client() as client:
        answers = [await client.post("/v1/signup", json=form(), headers=flooder) for _ in range(4)]
        someone_else = await client.post("/v1/signup", json=form(), headers=from_address())
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert 3000 < int(answers[-1].headers["Retry-After"]) <= 3600
    assert answers[-1].json()["error"]["code"] == "too_many_signups"
    assert someone_else.status_code == 202


async def test_one_email_signed_up_again_and_again_is_429_and_mailed_at_most_the_limit(
    platform: Platform,
) -> None:
    email = new_email()
    answers = [await sign_up(platform, email=email) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert len(await platform.mail_to(email, "Confirm your email", 2)) == 2


async def test_the_same_email_twice_is_one_application(platform: Platform) -> None:
    email = new_email()
    assert (await sign_up(platform, email=email)).status_code == 202
    assert (await sign_up(platform, email=email.upper(), name="Someone else")).status_code == 202
    links = await platform.mail_to(email, "Confirm your email", 2)
    async with httpx.AsyncClient() as browser:
        pages = [await browser.get(link) for link in [*links, links[0]]]
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert "your application is recorded" in pages[0].text
    async with httpx.AsyncClient(base_url=platform.partners, headers=ADMIN) as staff:
        listed = (await staff.get("/v1/applications", params={"limit": 500})).json()["applications"]
    mine = [a for a in listed if a["email"].lower() == email]
    assert len(mine) == 1 and mine[0]["status"] == "pending"


async def test_a_forged_altered_or_expired_link_is_refused_with_a_page_that_says_so(
    platform: Platform,
) -> None:
    email = new_email()
    await sign_up(platform, email=email)
    [link] = await platform.mail_to(email, "Confirm your email")
    token = link.rsplit("token=", 1)[1]
    keys = SessionKeys.of(SESSION_SECRET)
    expired = sign_link("signup", "0" * 32, int(time.time()) - 1, keys)
    forged = sign_link("signup", "0" * 32, int(time.time()) + 3600, SessionKeys.of("another secret" * 4))
    unknown = sign_link("signup", "0" * 32, int(time.time()) + 3600, keys)
    async with platform.gateway.client() as browser:
        altered = await browser.get("/portal/signup/verify", params={"token": token[:-2] + "xy"})
        answers = {name: await browser.get("/portal/signup/verify", params={"token": value})
                   for name, value in (("expired", expired), ("forged", forged), ("unknown", unknown),
                                       ("empty", ""))}
    assert altered.status_code == 400 and "This link does not work" in altered.text
    assert answers["expired"].status_code == 410 and "expired" in answers["expired"].text
    assert {answers[name].status_code for name in ("forged", "unknown", "empty")} == {400}
    assert answers["forged"].headers["Content-Security-Policy"].startswith("default-src 'none'")


async def invited_owner(platform: Platform) -> tuple[str, str]:
    """A partner from the sign-up, approved, its owner's password set: (partner_id, email)."""
    email = new_email()
    await sign_up(platform, email=email)
    [link] = await platform.mail_to(email, "Confirm your email")
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(link)).status_code == 200
    async with httpx.AsyncClient(base_url=platform.partners, headers=ADMIN) as staff:
        listed = (await staff.get("/v1/applications", params={"status": "pending", "limit": 500})).json()
        partner_id = next(a["partner_id"] for a in listed["applications"] if a["email"] == email)
        assert (await staff.post(f"/v1/applications/{partner_id}/approve",
                                 json={"reason": "ok"})).status_code == 200
    await set_password(platform, email, "You are invited")
    return partner_id, email


async def set_password(platform: Platform, email: str, subject: str, password: str = PASSWORD) -> None:
    """Open the newest link of that mail and set the password through the portal's form."""
    link = (await platform.mail_to(email, subject))[-1]
    async with platform.gateway.client() as browser:
        page = await browser.get(link)
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        done = await browser.post("/portal/password", data={
            "csrf": csrf.group(1), "token": link.rsplit("token=", 1)[1], "password": password,
            "password2": password})
    assert done.status_code == 303 and done.headers["location"] == "/portal/signin?done=password", done.text


async def session_of(platform: Platform, email: str, password: str = PASSWORD) -> dict[str, str]:
    async with platform.gateway.client() as client:
        answer = await client.post("/v1/sessions", json={"email": email, "password": password},
                                   headers=from_address())
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def until_status(platform: Platform, path: str, headers: dict[str, str], status: int) -> httpx.Response:
    deadline = time.monotonic() + 30
    async with platform.gateway.client() as client:
        while True:
            answer = await client.get(path, headers=headers)
            if answer.status_code == status or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.1)


async def test_an_owner_invites_a_user_and_the_removed_user_s_session_ends(platform: Platform) -> None:
    _, owner_email = await invited_owner(platform)
    owner = await session_of(platform, owner_email)
    member_email = new_email()
    async with platform.gateway.client() as client:
        invited = await client.post("/v1/me/users", json={"email": member_email, "name": "Max"},
                                    headers=owner)
        assert invited.status_code == 201, invited.text
        member_id = invited.json()["user"]["user_id"]
        await set_password(platform, member_email, "You are invited")
        member = await session_of(platform, member_email)
        users = await until_status(platform, "/v1/me/users", member, 200)
        assert {u["email"] for u in users.json()["users"]} == {owner_email, member_email}
        by_member = await client.post("/v1/me/users", json={"email": new_email()}, headers=member)
        assert by_member.status_code == 403 and by_member.json()["error"]["code"] == "not_an_owner"

        removed = await client.delete(f"/v1/me/users/{member_id}", headers=owner)

    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    ended = await until_status(platform, "/v1/me/users", member, 401)
    assert ended.status_code == 401
    assert (await until_status(platform, "/v1/me/users", owner, 200)).status_code == 200
    async with platform.gateway.client() as client:
        again = await client.post("/v1/sessions", json={"email": member_email, "password": PASSWORD},
                                  headers=from_address())
    assert again.status_code == 401


async def test_a_reset_password_ends_the_sessions_begun_before_it_and_wrong_ones_are_throttled(
    platform: Platform,
) -> None:
    _, email = await invited_owner(platform)
    before = await session_of(platform, email)
    async with platform.gateway.client() as browser:
        page = await browser.get("/portal/forgot")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        sent = await browser.post("/portal/forgot", data={"csrf": csrf.group(1), "email": email},
                                  headers=from_address())
    assert sent.status_code == 202
    await asyncio.sleep(1.1)  # a session's start is kept to the second (rounded up)
    await set_password(platform, email, "Reset your", "an entirely new passphrase")

    assert (await until_status(platform, "/v1/me/users", before, 401)).status_code == 401
    await session_of(platform, email, "an entirely new passphrase")
    address = from_address()
    async with platform.gateway.client() as client:
        tries = [await client.post("/v1/sessions", json={"email": email, "password": "not it at all"},
                                   headers=address) for _ in range(6)]
    # the reset asked for counted once for this email: four more failures reach the limit (5)
    assert [t.status_code for t in tries] == [401] * 4 + [429] * 2
    assert int(tries[-1].headers["Retry-After"]) > 0


async def portal_of(platform: Platform, email: str) -> httpx.AsyncClient:
    """A browser signed in to the portal with the user's email and password."""
    browser: httpx.AsyncClient = platform.gateway.client()
    browser.headers.update(from_address())
    page = await browser.get("/portal/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = await browser.post("/portal/signin", data={"csrf": csrf.group(1), "email": email,
                                                      "password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/portal/dashboard", done.text
    return browser


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_the_owner_records_tax_and_payment_details_in_the_portal_and_a_member_only_reads(
    platform: Platform,
) -> None:
    _, owner_email = await invited_owner(platform)
    owner = await portal_of(platform, owner_email)
    page = await owner.get("/portal/payment-details")
    assert page.status_code == 200 and 'id="profile-incomplete"' in page.text
    assert "payment_method" in page.text
    csrf = csrf_of(page)

    bad = await owner.post("/portal/payment-details/method", data={
        "csrf": csrf, "type": "sepa", "account_holder": "Trail GmbH", "iban": "DE00370400440532013000"})
    assert bad.status_code == 422, bad.text
    assert 'id="method-iban-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert "DE00370400440532013000" not in bad.text, "a refused number is not typed back"
    assert 'value="Trail GmbH"' in bad.text, "the rest of the form is kept"

    tax = await owner.post("/portal/payment-details/tax", data={
        "csrf": csrf, "legal_name": "Trail GmbH", "line1": "Hauptstr. 1", "city": "Berlin",
        "postal_code": "10115", "country": "de", "tax_id": "27/123/45678", "vat_id": "DE136695976",
        "tax_form": "none_needed"})
    assert tax.status_code == 200, tax.text
    saved = await owner.post("/portal/payment-details/method", data={
        "csrf": csrf, "type": "sepa", "account_holder": "Trail GmbH", "iban": "DE89370400440532013000"})
    assert saved.status_code == 200 and 'id="profile-complete"' in saved.text, saved.text
    assert "DE89370400440532013000" not in saved.text and "DE136695976" not in saved.text
    assert "27/123/45678" not in tax.text, "a tax number is never shown back"

    deadline = time.monotonic() + 30  # the page reads the log's summary, once the gateway has it
    while 'id="profile-complete"' not in (page := await owner.get("/portal/payment-details")).text:
        assert time.monotonic() < deadline, page.text
        await asyncio.sleep(0.2)
    assert 'id="profile-method">sepa<' in page.text and "DE89370400440532013000" not in page.text

    member_email = new_email()
    invite = await owner.post("/portal/users", data={"csrf": csrf, "email": member_email, "role": "member"})
    assert invite.status_code == 200, invite.text
    await set_password(platform, member_email, "You are invited")
    member = await portal_of(platform, member_email)
    read = await member.get("/portal/payment-details")
    assert read.status_code == 200 and 'id="owner-only"' in read.text
    assert 'action="/portal/payment-details' not in read.text
    refused = await member.post("/portal/payment-details/method", data={
        "csrf": csrf_of(read), "type": "paypal", "email": "me@x.example"})
    assert refused.status_code == 403 and 'id="profile-complete"' in refused.text
