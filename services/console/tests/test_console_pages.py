"""The console's pages over a real console (PostgreSQL, broker), the other services away:
signing in and out, the session cookie and CSRF, what each role is offered, a forged
form refused by the service (403), the pages' security headers, and the operations API
every role reads but only an owner may redrive from.

The pages that read another service answer 503 here, saying which (the browser test,
tests/browser/test_console.py, drives them over the whole platform)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from console_fixtures import ADMIN_TOKEN, PASSWORD, RunningConsole, bearer, refused_soon, until, user_body

from afflux_console.entrypoints.pages_app import READ_BY_PAGES
from afflux_infra.embedded import free_port

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def nowhere() -> Iterator[None]:
    """Every other service's address is a port nothing listens on."""
    names = [f"AFFLUX_{name.upper()}_URL" for name in READ_BY_PAGES]
    before = {name: os.environ.get(name) for name in names}
    os.environ.update({name: f"http://127.0.0.1:{free_port()}" for name in names})
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
async def pages(infra: object, nowhere: None) -> AsyncIterator[RunningConsole]:
    async with RunningConsole(
        infra.new_database(), infra.bootstrap_servers  # type: ignore[attr-defined]
    ) as service:
        yield service


async def browser(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)


async def signed_in_browser(
    base_url: str, email: str | None = None, token: str | None = None
) -> httpx.AsyncClient:
    """A browser that went through the sign-in page (password, or a token)."""
    client = await browser(base_url)
    page = await client.get("/console/signin")
    csrf = CSRF.search(page.text)
    assert page.status_code == 200 and csrf, page.text
    form = {"csrf": csrf.group(1), **({"token": token} if token else {"email": email, "password": PASSWORD})}
    answer = await client.post("/console/signin", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/dashboard", answer.text
    return client


async def new_user(base_url: str, role: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(ADMIN_TOKEN), timeout=30) as owner:
        made = await owner.post(
            "/v1/staff/users", json=user_body(f"{role}-{secrets.token_hex(4)}@net.example", role)
        )
    assert made.status_code == 201, made.text
    return dict(made.json())


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


async def test_signing_in_sets_a_strict_httponly_cookie_scoped_to_the_console(pages: RunningConsole) -> None:
    user = await new_user(pages.base_url, "analyst")
    client = await browser(pages.base_url)
    page = await client.get("/console/signin")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    answer = await client.post(
        "/console/signin", data={"csrf": csrf_of(page.text), "email": user["email"], "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "afflux_console=" in v)
    assert {"HttpOnly", "Path=/console", "SameSite=strict"} <= {part.strip() for part in cookie.split(";")}, (
        cookie
    )
    account = await client.get("/console/account")
    assert account.status_code == 200 and user["name"] in account.text and "analyst" in account.text
    await client.aclose()


async def test_a_sign_in_without_its_form_token_or_with_a_wrong_password_is_refused(
    pages: RunningConsole,
) -> None:
    user = await new_user(pages.base_url, "manager")
    client = await browser(pages.base_url)
    forged = await client.post("/console/signin", data={"email": user["email"], "password": PASSWORD})
    assert forged.status_code == 403 and "afflux_console=" not in forged.headers.get("set-cookie", "")
    page = await client.get("/console/signin")
    wrong = await client.post(
        "/console/signin", data={"csrf": csrf_of(page.text), "email": user["email"], "password": "x" * 14}
    )
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert (await client.get("/console/account")).status_code == 303
    await client.aclose()


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(pages: RunningConsole) -> None:
    client = await browser(pages.base_url)
    for path in ("/console", "/console/partners", "/console/audit", "/console/staff"):
        answer = await client.get(path)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/console/signin"), path
    await client.aclose()


async def test_signing_out_ends_the_session_on_the_server(pages: RunningConsole) -> None:
    user = await new_user(pages.base_url, "finance")
    client = await signed_in_browser(pages.base_url, user["email"])
    token = client.cookies["afflux_console"]
    account = await client.get("/console/account")
    out = await client.post("/console/signout", data={"csrf": csrf_of(account.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/signin"
    async with httpx.AsyncClient(base_url=pages.base_url, timeout=30) as api:
        await refused_soon(api, token)
    await client.aclose()


async def test_a_form_posted_without_the_session_csrf_token_is_refused(pages: RunningConsole) -> None:
    client = await signed_in_browser(pages.base_url, token=ADMIN_TOKEN)
    forged = await client.post(
        "/console/staff", data={"email": "x@y.example", "name": "X", "role": "owner", "password": PASSWORD}
    )
    assert forged.status_code == 403 and "expired" in forged.text
    await client.aclose()


async def test_an_owner_adds_staff_in_the_page_and_an_analyst_is_neither_offered_it_nor_allowed(
    pages: RunningConsole,
) -> None:
    owner = await signed_in_browser(pages.base_url, token=ADMIN_TOKEN)
    staff = await owner.get("/console/staff")
    assert staff.status_code == 200 and 'id="new-user"' in staff.text
    email = f"ana-{secrets.token_hex(4)}@net.example"
    made = await owner.post(
        "/console/staff",
        data={
            "csrf": csrf_of(staff.text),
            "email": email,
            "name": "Ana Lyst",
            "role": "analyst",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 303, made.text
    listed = await owner.get(made.headers["location"])
    assert "Ana Lyst" in listed.text and "The staff user was created" in listed.text

    analyst = await signed_in_browser(pages.base_url, email)
    account = await analyst.get("/console/account")
    assert 'href="/console/staff"' not in account.text, "the nav offers an analyst no staff page"
    refused = await analyst.get("/console/staff")
    assert refused.status_code == 403 and "may not" in refused.text
    forged = await analyst.post(
        "/console/staff",
        data={
            "csrf": csrf_of(account.text),
            "email": "e@x.example",
            "name": "E",
            "role": "owner",
            "password": PASSWORD,
        },
    )
    assert forged.status_code == 403 and "may not" in forged.text
    await owner.aclose()
    await analyst.aclose()


async def test_a_page_whose_service_is_away_says_which_service_with_a_503(pages: RunningConsole) -> None:
    client = await signed_in_browser(pages.base_url, token=ADMIN_TOKEN)
    answer = await client.get("/console/dashboard")
    assert answer.status_code == 503 and "gateway service cannot be reached" in answer.text
    await client.aclose()


async def test_every_role_reads_the_operations_view_and_only_an_owner_redrives(pages: RunningConsole) -> None:
    user = await new_user(pages.base_url, "manager")
    async with httpx.AsyncClient(base_url=pages.base_url, timeout=60) as api:
        session = await api.post("/v1/staff/sessions", json={"email": user["email"], "password": PASSWORD})
        token = session.json()["token"]
        view = await until(
            lambda: api.get("/v1/operations", headers=bearer(token)), lambda r: r.status_code == 200
        )
        states = {s["name"]: s["state"] for s in view.json()["services"]}
        assert states and set(states.values()) == {"down"}, states
        body = {"topic": "afflux.partners.v1", "partition": 0, "offset": 0}
        refused = await api.post("/v1/dead-letters/redrive", json=body, headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
        missing = await api.post("/v1/dead-letters/redrive", json=body, headers=bearer(ADMIN_TOKEN))
        assert missing.status_code == 404, missing.text
