"""What the security tests share: the admin token, the services under test and the
operations their OpenAPI documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from afflux_plumbing.auth import PUBLIC_KEY, SCOPE_KEY

ADMIN_TOKEN = "security-test-admin-token-7f3a"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PUBLIC_SERVICES = frozenset({"tracking"})
"""Services whose routes the contract opens to browsers and advertiser servers."""
PARTNER_PREFIX = "/v1/me"
"""The gateway's partner routes: the partner's ``X-Api-Key``, not the admin token."""
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class ServiceApp:
    name: str
    app: FastAPI
    served: bool = False
    """Served by the test's event loop (its startup ran there, its workers run there)."""

    def asgi(self) -> Any:
        """The app for a tool that drives ASGI in a loop of its own (schemathesis): a served
        app without its lifespan, whose startup and shutdown belong to the serving loop (a
        shutdown run again in the tool's loop at the session's end would await that loop's
        consumers and tasks); an app not served with it."""
        if not self.served:
            return self.app
        app = self.app

        async def without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                # Refused before any message: how an app says it has no lifespan.
                raise RuntimeError("the lifespan belongs to the loop serving the app")
            await app(scope, receive, send)

        return without_lifespan

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=f"http://{self.name}", **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str

    def spec(self, app: FastAPI) -> dict[str, Any]:
        """The operation's OpenAPI object."""
        found: dict[str, Any] = app.openapi()["paths"][self.path][self.method.lower()]
        return found

    def scope(self, app: FastAPI) -> str | None:
        """The scope the route names (``x-afflux-scope``), if any."""
        return self.spec(app).get(SCOPE_KEY)

    def public(self, app: FastAPI) -> bool:
        """Marked as needing no credential (``x-afflux-public``: the staff's sign-in)."""
        return PUBLIC_KEY in self.spec(app)

    @property
    def concrete_path(self) -> str:
        """The path with every parameter filled in."""
        return re.sub(r"\{[^}]+\}", "x-1", self.path)


def operations(app: FastAPI) -> Iterator[Operation]:
    """Every operation the app's OpenAPI document lists."""
    for path, item in app.openapi()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield Operation(method.upper(), path)


def assert_error_shape(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]


def contract_violation(status: int, body: Any) -> str | None:
    """What is wrong with an answer, by the public HTTP contract; None if nothing."""
    if status >= 500:
        return f"server error {status}: {body!r}"
    if 400 <= status < 500:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or set(error) != {"code", "message", "field"}:
            return f"{status} outside the error shape: {body!r}"
        if not isinstance(error["code"], str) or not isinstance(error["message"], str):
            return f"{status} with a malformed error: {body!r}"
    return None
