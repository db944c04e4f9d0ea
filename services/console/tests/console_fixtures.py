"""Helpers for the console's tests: the admin token, bodies, bearer headers, and reading
what the relay put on ``afflux.staff.v1``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from afflux_console.entrypoints.main import build
from afflux_console.settings import ConsoleSettings
from afflux_contracts import STAFF, Envelope, Event
from afflux_infra.testing import RunningService, read_envelopes

T = TypeVar("T")
ADMIN_TOKEN = "console-test-admin-token"
PASSWORD = "correct horse battery staple"


class RunningConsole(RunningService[ConsoleSettings]):
    """The console as its tests run it, with the test admin token (the bootstrap owner's)."""

    def __init__(self, database_url: str, kafka_bootstrap: str, **settings: Any) -> None:
        super().__init__(ConsoleSettings, build, database_url, kafka_bootstrap,
                         **{"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, **settings})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user_body(email: str, role: str = "manager", **overrides: Any) -> dict[str, Any]:
    return {
        "email": email,
        "name": email.split("@")[0].title(),
        "role": role,
        "password": PASSWORD,
        **overrides,
    }


async def signed_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **more: Any) -> str:
    """The bearer token of a new session of ``email``."""
    response = await client.post("/v1/staff/sessions", json={"email": email, "password": password, **more})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"} and error["message"], error
    assert error["code"] == code, error


async def staff_log(bootstrap: str) -> list[Envelope[Event]]:
    """Every envelope now on the staff topic (other tests share the broker)."""
    return [envelope for _, envelope in await read_envelopes(bootstrap, STAFF.name, STAFF.partitions)]


async def until(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """Call ``read`` until ``done`` holds for what it returns; return that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await read()
        if done(found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {found!r}")
        await asyncio.sleep(0.1)


async def refused_soon(client: httpx.AsyncClient, token: str, path: str = "/v1/staff/me") -> None:
    """Within seconds, ``token`` is 401 at ``path`` (the staff view has read its end)."""

    async def status() -> int:
        return (await client.get(path, headers=bearer(token))).status_code

    await until(status, lambda code: code == 401)
