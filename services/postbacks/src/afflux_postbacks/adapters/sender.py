"""One postback call: resolve, check, pin, GET (or POST a JSON body), read a little, done.

The host is resolved here and every address it gives is checked (``domain.safety``)
before anything is sent; the call then goes to the checked address itself (the
``Host`` header and, for https, the TLS server name stay the partner's host), so a
second DNS answer cannot send it elsewhere. Redirects are not followed (a 3xx is
the answer), at most ``max_body`` bytes of the answer are read, and no cookie is
ever kept (``adapters.http1`` keeps no state but idle connections).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from contextlib import suppress
from urllib.parse import urlsplit

from afflux_postbacks.adapters.http1 import Endpoint, Http1Client, basic_auth, request_target
from afflux_postbacks.domain.retries import AttemptResult
from afflux_postbacks.domain.safety import Refused, checked_url, first_allowed

USER_AGENT = "Afflux-Postbacks/1"


class PostbackSender:
    """Calls partners' postback URLs over kept-alive connections per checked address."""

    def __init__(self, *, timeout: float, allow_private: bool, max_body: int = 4096,
                 keep_idle: int = 16) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._client = Http1Client(user_agent=USER_AGENT, max_body=max_body, keep_idle=keep_idle)

    async def close(self) -> None:
        await self._client.close()

    async def call(self, url: str, idempotency_key: str, body: bytes | None = None) -> AttemptResult:
        """GET ``url``, or POST ``body`` (JSON) to it when there is one."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._send(url, idempotency_key, body)
        except Refused as refused:
            return AttemptResult(None, f"refused: {refused}", time.perf_counter() - started, refused=True)
        except TimeoutError:
            return AttemptResult(None, f"timed out after {self.timeout:g}s", time.perf_counter() - started)
        except (OSError, ValueError) as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            return AttemptResult(None, reason, time.perf_counter() - started)
        latency = time.perf_counter() - started
        if 200 <= status < 300:
            return AttemptResult(status, None, latency)
        return AttemptResult(status, f"HTTP {status}", latency)

    async def _send(self, url: str, idempotency_key: str, body: bytes | None) -> int:
        scheme, host, port = checked_url(url)
        address = first_allowed(await resolve(host, port), self.allow_private)
        parts = urlsplit(url)
        default_port = port == (443 if scheme == "https" else 80)
        name = host.encode("idna").decode("ascii") if not host.isascii() else host
        if ":" in name:
            name = f"[{name}]"
        headers = {"Host": name if default_port else f"{name}:{port}", "Idempotency-Key": idempotency_key}
        authorization = basic_auth(parts.username, parts.password)
        if authorization is not None:
            headers["Authorization"] = authorization
        if body is not None:
            headers["Content-Type"] = "application/json"
        return await self._client.request(
            Endpoint(scheme, address, port, host), "POST" if body is not None else "GET",
            request_target(parts.path, parts.query), headers, body)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (a literal address is its own)."""
    with suppress(ValueError):
        return [str(ipaddress.ip_address(host))]  # a literal address: nothing to look up
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error}") from error
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
