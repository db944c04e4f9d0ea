"""A lean HTTP/1.1 client for postback calls: kept-alive connections per pinned address.

Why not httpx: a postback is one small request and a status; httpx's request and
response models, its pool and anyio cost about a millisecond of CPU per call, which
capped the whole service near 200 deliveries/s on two cores. This client writes the
request bytes itself and parses the answer with ``httptools`` (llhttp), reading at most
``max_body`` bytes of it; what it does not do is what a postback must not do anyway
(no redirects followed, no cookies, no proxies from the environment).

A connection is reused only after a complete answer that allows it; one that timed out,
failed, or answered more than ``max_body`` is closed.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import defaultdict
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote

import httptools

TARGET_SAFE = "/?#[]@!$&'()*+,;=%:-._~"
"""Characters kept as written in a request target: every reserved one and ``%`` (so what is
already percent-encoded stays so); spaces, controls and non-ASCII are encoded."""


@dataclass(frozen=True)
class Endpoint:
    """Where a connection goes: the checked address, and the name TLS verifies."""

    scheme: str
    address: str
    port: int
    server_name: str


class _Connection(asyncio.Protocol):
    """One connection; answers one request at a time."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[int] | None = None
        self.read = 0
        self.reusable = False
        self.lost = False

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionError(f"malformed answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionError("the connection was closed before a whole answer"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self.read += len(body)
        if self.read >= self.max_body:  # enough: the rest is not read, the connection goes
            self._answered(reusable=False)

    def on_message_complete(self) -> None:
        self._answered(reusable=self.parser.should_keep_alive())

    # -- a request ----------------------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.read = 0
        self.reusable = False
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer

    def _answered(self, *, reusable: bool) -> None:
        if self.answer is not None and not self.answer.done():
            self.reusable = reusable
            self.answer.set_result(self.parser.get_status_code())
            if not reusable:
                self.close()

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def idle_usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()


class Http1Client:
    """Calls over kept-alive connections, at most ``keep_idle`` idle ones per endpoint."""

    def __init__(self, *, user_agent: str, max_body: int = 4096, keep_idle: int = 16) -> None:
        self.user_agent = user_agent
        self.max_body = max_body
        self.keep_idle = keep_idle
        self._idle: dict[Endpoint, list[_Connection]] = defaultdict(list)
        self._tls = ssl.create_default_context()

    async def request(self, endpoint: Endpoint, method: str, target: str, headers: dict[str, str],
                      body: bytes | None = None) -> int:
        """Send one request and return the answer's status. The caller bounds the time
        (cancelling closes the connection)."""
        connection = await self._connection(endpoint)
        try:
            status = await connection.send(_request_bytes(method, target, {
                "User-Agent": self.user_agent, "Accept": "*/*", **headers}, body))
        except BaseException:
            connection.close()
            raise
        if connection.reusable and connection.idle_usable:
            idle = self._idle[endpoint]
            if len(idle) < self.keep_idle:
                idle.append(connection)
            else:
                connection.close()
        return status

    async def _connection(self, endpoint: Endpoint) -> _Connection:
        idle = self._idle.get(endpoint)
        while idle:
            connection = idle.pop()
            if connection.idle_usable:
                return connection
        loop = asyncio.get_running_loop()
        tls = endpoint.scheme == "https"
        _, protocol = await loop.create_connection(
            lambda: _Connection(self.max_body), endpoint.address, endpoint.port,
            ssl=self._tls if tls else None, server_hostname=endpoint.server_name if tls else None)
        return protocol

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def request_target(path: str, query: str) -> str:
    """The origin-form target of a URL's path and query, safe to put on the request line."""
    target = quote(path or "/", safe=TARGET_SAFE)
    return f"{target}?{quote(query, safe=TARGET_SAFE)}" if query else target


def basic_auth(username: str | None, password: str | None) -> str | None:
    """The ``Authorization`` value for a URL's user info (None without one)."""
    if not username:
        return None
    raw = f"{unquote(username)}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _request_bytes(method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"the {name} header would break the request: {value!r}")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body is not None else head
