"""The services' admin APIs, called by the console's pages as the signed-in person.

The console holds no credential of its own for these calls: every request carries the
staff member's own bearer token (their session, or the token they signed in with), so
each service decides what that person may do (``403 forbidden_role`` otherwise) and
every event a write causes names them as its actor. The console's own JSON API (staff,
audit, operations) is called the same way, in process (``httpx.ASGITransport``), so its
pages pass through the same authorization as any other client.

A service that cannot be reached, or that answers 5xx, is ``Unavailable``; a 4xx is a
``Refused`` carrying the service's own error (code, message, field), which the pages
show as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from starlette.types import ASGIApp

logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per call to another service

CONSOLE = "console"
"""The console itself: its JSON API, called in process."""


class Unavailable(Exception):
    """A service did not answer, or failed (5xx): nothing is known of the outcome."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service


class Refused(Exception):
    """A service refused the call (4xx), saying why in the shared error shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status (``202``: recorded, not on the log yet) and body."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def pending_on_log(self) -> bool:
        return self.headers.get("x-afflux-log") == "pending"


def segment(value: str) -> str:
    """One path segment (an id a person typed or a link carried), escaped."""
    return quote(value, safe="")


class ServiceApis:
    """One pooled client per service; every call names the caller's token."""

    def __init__(self, urls: Mapping[str, str], console_app: ASGIApp, timeout: float = 15.0) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self.clients: dict[str, httpx.AsyncClient] = {
            name: httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout, limits=limits)
            for name, url in urls.items()
            if name != CONSOLE
        }
        self.clients[CONSOLE] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=console_app), base_url="http://console", timeout=timeout
        )
        self.urls = dict(urls)
        self._routes: dict[str, tuple[float, frozenset[str]]] = {}

    async def call(
        self,
        token: str,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Answer:
        """``method path`` on ``service`` as the holder of ``token``."""
        response = await self._send(token, method, service, path, params, body)
        content = _json(response) if response.content else None
        if response.status_code >= 400:
            error = content.get("error") if isinstance(content, dict) else None
            error = error if isinstance(error, dict) else {}
            raise Refused(
                response.status_code,
                str(error.get("code") or f"http_{response.status_code}"),
                str(error.get("message") or response.reason_phrase),
                error.get("field"),
            )
        return Answer(response.status_code, content, {k.lower(): v for k, v in response.headers.items()})

    async def get(self, token: str, service: str, path: str, **params: Any) -> Any:
        """The body of ``GET path`` (parameters that are None are left out)."""
        given = {name.rstrip("_"): value for name, value in params.items() if value not in (None, "")}
        return (await self.call(token, "GET", service, path, params=given)).body

    async def raw(self, token: str, service: str, path: str, params: Mapping[str, Any]) -> httpx.Response:
        """The answer as it came (a CSV to hand on), or ``Refused``."""
        response = await self._send(token, "GET", service, path, params, None)
        if response.status_code >= 400:
            await self.call(token, "GET", service, path, params=params)  # raises with the service's error
        return response

    async def serves(self, service: str, path: str) -> bool:
        """Whether ``service`` serves ``path`` (a template, ``{name}`` for any parameter; its
        OpenAPI document, read once a minute): for routes another team is adding while the
        console already offers their page."""
        known = self._routes.get(service)
        if known is None or time.monotonic() - known[0] > 60:
            try:
                document = (await self.clients[service].get("/openapi.json")).json()
                paths = frozenset(document.get("paths", {}))
            except (httpx.HTTPError, ValueError, AttributeError):
                paths = frozenset()
            known = (time.monotonic(), paths)
            self._routes[service] = known
        return any(_same_template(path, served) for served in known[1])

    async def ready(self, service: str) -> tuple[str, str]:
        """``ready``, ``not-ready`` (with what ``/readyz`` said) or ``down``."""
        client = self.clients[service]
        try:
            answer = await client.get("/readyz", timeout=3.0)
        except httpx.HTTPError as error:
            return "down", type(error).__name__
        if answer.status_code == 200:
            return "ready", ""
        return "not-ready", answer.text[:200].strip()

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))

    async def _send(
        self, token: str, method: str, service: str, path: str, params: Mapping[str, Any] | None, body: Any
    ) -> httpx.Response:
        client = self.clients.get(service)
        if client is None:
            raise Unavailable(service, "no address configured")
        try:
            response = await client.request(
                method, path, params=params, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as error:
            raise Unavailable(service, f"did not answer ({type(error).__name__})") from error
        if response.status_code >= 500:
            raise Unavailable(service, f"answered {response.status_code}")
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _same_template(wanted: str, served: str) -> bool:
    """``/v1/a/{x}/b`` matches ``/v1/a/{partner_id}/b``: parameters by place, not name."""
    left, right = wanted.strip("/").split("/"), served.strip("/").split("/")
    return len(left) == len(right) and all(
        a == b or (a.startswith("{") and b.startswith("{")) for a, b in zip(left, right, strict=True)
    )
