"""Blocked keys on the operations page, over a real console (PostgreSQL, a broker of its
own): a key its audit consumer blocked behind a poisoned record is listed with how many
letters it holds and why; an owner discards the poison after a page that says what that
does, then redrives the key from the page and its letters are applied in their order;
a read-only role is offered neither, and its forged posts are refused; and the view
answers within its budget when the database and broker accept but never answer.

The console's own audit consumer is the consumer that blocks: it reads the partners
topic, and a record there that is no envelope is dead-lettered and held. The broker is
the module's own (``broker_of_its_own``), so no other test's dead letters share the page."""

from __future__ import annotations

import asyncio
import html
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from console_fixtures import ADMIN_TOKEN, RunningConsole, bearer, until
from fastapi import FastAPI
from test_console_pages import csrf_of, new_user, nowhere, signed_in_browser

from afflux_console.adapters.operations import Operations
from afflux_console.entrypoints import ops_http
from afflux_contracts import PARTNERS, Actor, Envelope, PartnerCreated, encode
from afflux_infra.testing import broker_of_its_own
from afflux_plumbing.auth import Credentials

__all__ = ["nowhere"]  # the fixture: every other service's address is a port nothing listens on


@pytest.fixture(scope="module")
def own_broker(infra: Any) -> Iterator[str]:
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
async def operated(infra: Any, own_broker: str, nowhere: None) -> AsyncIterator[RunningConsole]:
    async with RunningConsole(infra.new_database(), own_broker) as service:
        yield service


@pytest.fixture
async def producer(own_broker: str) -> AsyncIterator[AIOKafkaProducer]:
    raw = AIOKafkaProducer(bootstrap_servers=own_broker, acks="all")
    await raw.start()
    yield raw
    await raw.stop()


def created(name: str) -> Envelope[PartnerCreated]:
    """A partner created by the bootstrap owner: an event the audit trail records."""
    payload = PartnerCreated(partner_id=f"p-{name}", name=name, email=f"{name}@example.com")
    return Envelope.wrap(payload, producer="test", actor=Actor(kind="admin", id="admin"))


async def poisoned_key(producer: AIOKafkaProducer) -> tuple[str, list[str]]:
    """A new key whose first record is no envelope, and two partners created behind it:
    the key and the event ids of those two, in their order."""
    key = f"partner-{secrets.token_hex(4)}"
    behind = [created(f"behind-{n}-{key}") for n in range(2)]
    await producer.send_and_wait(PARTNERS.name, b"{poison", key=key.encode())
    for envelope in behind:
        await producer.send_and_wait(PARTNERS.name, encode(envelope), key=key.encode())
    return key, [str(envelope.event_id) for envelope in behind]


async def blocked_key(api: httpx.AsyncClient, key: str, held: int) -> dict[str, Any]:
    """The key as the operations view lists it, once it holds ``held`` letters."""

    async def listed() -> list[dict[str, Any]]:
        view = (await api.get("/v1/operations", headers=bearer(ADMIN_TOKEN))).json()
        return [b for b in view["blocked"] if b["key_text"] == key]

    [found] = await until(listed, lambda keys: len(keys) == 1 and keys[0]["held"] == held, timeout=30)
    return dict(found)


async def audited(api: httpx.AsyncClient, event_ids: list[str]) -> list[str]:
    """Which of ``event_ids`` the audit trail holds, in the order it applied them."""
    items = (await api.get("/v1/audit", params={"limit": 200}, headers=bearer(ADMIN_TOKEN))).json()["items"]
    return [item["event_id"] for item in reversed(items) if item["event_id"] in event_ids]


async def test_a_poisoned_key_is_listed_discarded_after_confirmation_and_redriven_in_order(
    operated: RunningConsole, producer: AIOKafkaProducer
) -> None:
    key, behind = await poisoned_key(producer)
    async with httpx.AsyncClient(base_url=operated.base_url, timeout=60) as api:
        listed = await blocked_key(api, key, held=3)
        assert listed["topic"] == PARTNERS.name and listed["store"].startswith("console.")
        assert listed["first"]["source"].startswith(f"{PARTNERS.name}#")
        assert await audited(api, behind) == [], "both wait behind the poison"

        owner = await signed_in_browser(operated.base_url, token=ADMIN_TOKEN)
        page = await owner.get("/console/operations")
        row = html.unescape(page.text.split(f'data-key="{key}"')[1].split("</tr>")[0])
        assert ">3<" in row and listed["first"]["reason"] in row and "Redrive the key" in row
        confirm_link = row.split('href="')[1].split('"')[0]

        confirm = await owner.get(confirm_link)
        assert confirm.status_code == 200, confirm.text
        assert "never applied" in confirm.text and "stops waiting for it" in confirm.text
        assert "stay on the dead-letter topic until the key is redriven" in confirm.text
        assert await blocked_key(api, key, held=3), "asking is not discarding"
        form = {name: listed["first"][name] for name in ("store", "topic", "key", "digest")}
        discarded = await owner.post(
            "/console/operations/discard", data={"csrf": csrf_of(confirm.text), **form}
        )
        assert discarded.status_code == 303, discarded.text
        assert "no longer waits" in (await owner.get(discarded.headers["location"])).text
        waiting = await blocked_key(api, key, held=2)
        assert "behind" in waiting["first"]["reason"], waiting

        page = await owner.get("/console/operations")
        redriven = await owner.post(
            "/console/operations/redrive-key",
            data={"csrf": csrf_of(page.text), "topic": PARTNERS.name, "key": waiting["key"]},
        )
        assert redriven.status_code == 303, redriven.text
        assert await until(lambda: audited(api, behind), lambda ids: len(ids) == 2, timeout=30) == behind
        view = await until(
            lambda: api.get("/v1/operations", headers=bearer(ADMIN_TOKEN)),
            lambda r: not [b for b in r.json()["blocked"] if b["key_text"] == key],
        )
        assert view.status_code == 200
        assert f'data-key="{key}"' not in (await owner.get("/console/operations")).text
        again = await owner.post("/console/operations/discard", data={"csrf": csrf_of(page.text), **form})
        assert again.status_code == 404 and "holds no such letter" in html.unescape(again.text)
        await owner.aclose()


async def test_a_read_only_role_sees_the_blocked_key_without_buttons_and_its_forged_posts_are_refused(
    operated: RunningConsole, producer: AIOKafkaProducer
) -> None:
    key, _ = await poisoned_key(producer)
    async with httpx.AsyncClient(base_url=operated.base_url, timeout=60) as api:
        listed = await blocked_key(api, key, held=3)
    user = await new_user(operated.base_url, "manager")
    manager = await signed_in_browser(operated.base_url, user["email"])
    page = await manager.get("/console/operations")
    row = page.text.split(f'data-key="{key}"')[1].split("</tr>")[0]
    assert "Redrive the key" not in row and "Discard" not in row and "<form" not in row
    form = {name: listed["first"][name] for name in ("store", "topic", "key", "digest")}
    forged_discard = await manager.post(
        "/console/operations/discard", data={"csrf": csrf_of(page.text), **form}
    )
    assert forged_discard.status_code == 403 and "may not" in forged_discard.text
    forged_redrive = await manager.post(
        "/console/operations/redrive-key",
        data={"csrf": csrf_of(page.text), "topic": PARTNERS.name, "key": listed["key"]},
    )
    assert forged_redrive.status_code == 403 and "may not" in forged_redrive.text
    without_csrf = await manager.post("/console/operations/redrive-key", data={"topic": PARTNERS.name})
    assert without_csrf.status_code == 403
    async with httpx.AsyncClient(base_url=operated.base_url, timeout=60) as api:
        assert (await blocked_key(api, key, held=3))["first"] == listed["first"], "nothing was discarded"
    await manager.aclose()


async def test_the_operations_view_answers_within_its_budget_when_the_database_and_broker_never_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    monkeypatch.setattr(ops_http, "READ_BUDGET", 1.0)

    async def down(_: str) -> tuple[str, str]:
        return "down", "no answer"

    operations = Operations(f"postgresql://afflux@127.0.0.1:{port}/afflux", f"127.0.0.1:{port}")
    app = FastAPI()
    app.include_router(ops_http.operations_routes(operations, ["partners"], down, Credentials(ADMIN_TOKEN)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as api:
        started = time.monotonic()
        answer = await api.get("/v1/operations", headers=bearer(ADMIN_TOKEN))
        took = time.monotonic() - started
    for writer in held:  # the database query's thread, still connecting, fails and ends
        writer.close()
    silent.close()
    assert answer.status_code == 200, answer.text
    assert took < 3.0, f"{took:.1f} s"
    assert answer.json()["problems"] == [
        f"{part}: no answer within 1 s" for part in ("consumer lag", "dead letters", "blocked keys")
    ]
