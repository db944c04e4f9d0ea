"""The hot path as a bare ASGI layer: tracking-link clicks (``GET|HEAD /c/{offer}/{partner}``),
smart-link clicks (``GET|HEAD /s/{smart_link}/{partner}``) and impressions
(``GET /i/{offer}/{partner}``) are answered here, in front of FastAPI,
which serves everything else (postbacks, direct clicks, health, metrics, OpenAPI).

A click costs a dictionary lookup in the memory view, one envelope and one acks=all
publish; routing, validation and dependency injection per request would cost more
than that. FastAPI still documents both routes, and its handlers call the same
``respond_*`` functions, so there is one implementation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from afflux_contracts import ClickOutcome
from afflux_plumbing.http import TrustedProxies, client_address, client_scheme, error_body
from afflux_plumbing.http_limits import MAX_QUERY_BYTES
from afflux_plumbing.metrics import HTTP_REQUESTS, HTTP_SECONDS
from afflux_tracking.application.intake import Intake, RecordedClick, Unavailable, Visit
from afflux_tracking.domain.links import SUB_NAMES, Subs
from afflux_tracking.domain.routing import REFUSALS, UnknownLink
from afflux_tracking.domain.visitors import is_visitor_cookie, traffic_outcome

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

MAX_SUB = 500
MAX_QUERY_FIELDS = 50
MAX_HEADER_KEPT = 2000
VISITOR_COOKIE = "afx_v"
VISITOR_COOKIE_SECONDS = 400 * 24 * 3600
TRANSACTION_HEADER = "X-Afflux-Transaction-Id"
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
"""A transparent 1x1 GIF: what an impression or a conversion pixel answers."""

_CONTROL = {chr(code) for code in (*range(0x20), 0x7F)}
CLICK_ROUTE = "/c/{offer_id}/{partner_id}"
IMPRESSION_ROUTE = "/i/{offer_id}/{partner_id}"
SMART_LINK_ROUTE = "/s/{smart_link_id}/{partner_id}"


@dataclass(frozen=True)
class Raw:
    """A finished response: status, headers, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class BadVisit(ValueError):
    def __init__(self, field: str | None, message: str, status: int = 422,
                 code: str = "invalid_request") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.code = code


def _json(status: int, document: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Raw:
    return Raw(status, [("content-type", "application/json"), ("cache-control", "no-store"),
                        *(headers or [])], json.dumps(document).encode())


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: list[tuple[str, str]] | None = None) -> Raw:
    return _json(status, error_body(code, message, field), headers)


def _gif(status: int = 200) -> Raw:
    return Raw(status, [("content-type", "image/gif"), ("cache-control", "no-store")], GIF)


def query_params(scope: Scope) -> dict[str, str]:
    """The query string's parameters (first value wins), bounded in size and count."""
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return {}
    if len(raw) > MAX_QUERY_BYTES:  # the shared bound every other route has (plumbing)
        raise BadVisit(None, f"the query string is longer than {MAX_QUERY_BYTES} bytes", 414, "uri_too_long")
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError as error:
        raise BadVisit(None, f"the query string cannot be read: {error}") from error
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def subs_of(params: dict[str, str]) -> Subs:
    """sub1..sub5 as given (empty is absent); too long or with control characters: refused."""
    values: dict[str, str | None] = {}
    for name in SUB_NAMES:
        value = params.get(name) or None
        if value is not None and len(value) > MAX_SUB:
            raise BadVisit(name, f"{name} must be at most {MAX_SUB} characters")
        if value is not None and not _CONTROL.isdisjoint(value):
            raise BadVisit(name, f"{name} must not contain control characters")
        values[name] = value
    return Subs(**values)


def headers_of(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())}


def _kept(value: str | None) -> str | None:
    return value[:MAX_HEADER_KEPT] if value is not None else None


def visitor_cookie(headers: dict[str, str]) -> str | None:
    """The ``afx_v`` cookie the request sent, if it is one the tracker sets."""
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == VISITOR_COOKIE and is_visitor_cookie(value):
            return value
    return None


def visit_of(scope: Scope, offer_id: str, partner_id: str, proxies: TrustedProxies) -> Visit:
    """The visit a request on a link (or ``POST /v1/clicks``) makes: one rule for all."""
    headers = headers_of(scope)
    user_agent = _kept(headers.get("user-agent"))
    params = query_params(scope)
    return Visit(
        offer_id=offer_id, partner_id=partner_id, subs=subs_of(params),
        deep_link=params.get("url") or None, url_id=params.get("url_id") or None,
        ip=client_address(scope, proxies), user_agent=user_agent, referer=_kept(headers.get("referer")),
        traffic=traffic_outcome(scope["method"], user_agent, headers), cookie=visitor_cookie(headers),
    )


Records = Callable[[Visit], Awaitable[RecordedClick | UnknownLink]]


async def respond_click(intake: Intake, scope: Scope, offer_id: str, partner_id: str,
                        proxies: TrustedProxies) -> Raw:
    """Record a click and answer where its visitor goes."""
    return await _clicked(scope, offer_id, partner_id, proxies, intake.record_click)


async def respond_smart_click(intake: Intake, scope: Scope, smart_link_id: str, partner_id: str,
                              proxies: TrustedProxies) -> Raw:
    """Record a smart link's click on the offer it chooses and answer where its visitor goes."""
    async def record(visit: Visit) -> RecordedClick | UnknownLink:
        return await intake.record_smart_click(visit, smart_link_id)

    return await _clicked(scope, smart_link_id, partner_id, proxies, record)


async def _clicked(scope: Scope, link_id: str, partner_id: str, proxies: TrustedProxies,
                   record: Records) -> Raw:
    try:
        visit = visit_of(scope, link_id, partner_id, proxies)
        recorded = await record(visit)
    except (BadVisit, Unavailable) as error:
        return _failure(error)
    if isinstance(recorded, UnknownLink):
        return _error(404, "link_not_found", recorded.message)
    headers = [("cache-control", "no-store"), (TRANSACTION_HEADER.lower(), recorded.click.transaction_id)]
    if visit.cookie is None and visit.traffic is ClickOutcome.VALID:
        # The cookie of the id this click was recorded under: the visitor's next click,
        # with it or without, is the same visitor.
        secure = "; Secure" if client_scheme(scope, proxies) == "https" else ""
        cookie = f"{VISITOR_COOKIE}={visit.visitor_id}; Max-Age={VISITOR_COOKIE_SECONDS}; Path=/; HttpOnly"
        headers.append(("set-cookie", f"{cookie}; SameSite=Lax{secure}"))
    if recorded.click.redirect_url is None:
        outcome = recorded.decision.outcome
        message = f"{REFUSALS[outcome]} and it has no fallback URL; the click was recorded"
        return _error(404, outcome.value, message, headers=headers[1:])
    return Raw(302, [*headers, ("location", recorded.click.redirect_url)])


async def respond_impression(intake: Intake, scope: Scope, offer_id: str, partner_id: str,
                             proxies: TrustedProxies) -> Raw:
    """Record an impression and answer the 1x1 GIF."""
    try:
        visit = visit_of(scope, offer_id, partner_id, proxies)
        recorded = await intake.record_impression(visit)
    except (BadVisit, Unavailable) as error:
        return _failure(error)
    if isinstance(recorded, UnknownLink):
        return _error(404, "link_not_found", recorded.message)
    return _gif()


def _failure(error: BadVisit | Unavailable) -> Raw:
    """Bad input, or a fact that could not be recorded: what the visitor is answered."""
    if isinstance(error, BadVisit):
        return _error(error.status, error.code, error.message, error.field)
    return _unavailable(error)


def _unavailable(error: Exception) -> Raw:
    return _error(503, "unavailable", f"{error}; nothing was recorded, retry shortly",
                  headers=[("retry-after", "1")])


async def send_raw(send: Send, raw: Raw, head_only: bool = False) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in raw.headers]
    headers.append((b"content-length", str(len(raw.body)).encode()))
    await send({"type": "http.response.start", "status": raw.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else raw.body})


Respond = Callable[[Intake, Scope, str, str, TrustedProxies], Awaitable[Raw]]


class TrackingEdge:
    """ASGI middleware: answers ``/c/..``, ``/s/..`` and ``/i/..`` itself, passes the rest to ``app``."""

    def __init__(self, app: ASGIApp, intake: Intake, proxies: TrustedProxies) -> None:
        self.app = app
        self.intake = intake
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            link = _link(scope["path"])
            if link is not None:
                kind, link_id, partner_id = link
                respond, route, methods = _ANSWERED[kind]
                if scope["method"] in methods:
                    await self._answer(respond, route, scope, send, link_id, partner_id)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, respond: Respond, route: str, scope: Scope, send: Send, offer_id: str,
                      partner_id: str) -> None:
        started = time.perf_counter()
        raw = await self._guarded(respond, scope, offer_id, partner_id)
        await send_raw(send, raw, head_only=scope["method"] == "HEAD")
        requests, seconds = _metrics(scope["method"], route, raw.status)
        requests.inc()
        seconds.observe(time.perf_counter() - started)

    async def _guarded(self, respond: Respond, scope: Scope, offer_id: str, partner_id: str) -> Raw:
        try:
            return await respond(self.intake, scope, offer_id, partner_id, self.proxies)
        except Exception:
            log.exception("tracking request %s failed", scope["path"][:200])
            return _error(500, "internal_error", "the request could not be completed; retry later")


_ANSWERED: dict[str, tuple[Respond, str, tuple[str, ...]]] = {
    "c": (respond_click, CLICK_ROUTE, ("GET", "HEAD")),
    "s": (respond_smart_click, SMART_LINK_ROUTE, ("GET", "HEAD")),
    "i": (respond_impression, IMPRESSION_ROUTE, ("GET",)),
}
"""What the edge answers per link kind: the response, its route's label, its methods."""


@lru_cache(maxsize=64)
def _metrics(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram children of a request's labels, looked up
    once (``labels()`` costs microseconds a call; the labels take a few dozen values)."""
    return HTTP_REQUESTS.labels(method, route, str(status)), HTTP_SECONDS.labels(route)


def _link(path: str) -> tuple[str, str, str] | None:
    """``("c"|"i"|"s", offer_id (a smart link's id), partner_id)`` for a link path, else ``None``."""
    if len(path) < 6 or path[0] != "/" or path[2] != "/" or path[1] not in "cis":
        return None
    parts = path[3:].split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return path[1], parts[0], parts[1]
