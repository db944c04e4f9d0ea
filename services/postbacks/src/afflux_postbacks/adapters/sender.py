"""One postback call: resolve, check, pin, GET, read a little, done.

The host is resolved here and every address it gives is checked (``domain.safety``)
before anything is sent; the call then goes to the checked address itself (the
``Host`` header and, for https, the TLS server name stay the partner's host), so a
second DNS answer cannot send it elsewhere. Redirects are not followed (a 3xx is
the answer), at most ``max_body`` bytes of the answer are read, and no cookie is
ever kept.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from contextlib import suppress
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit, urlunsplit

import httpx

from afflux_postbacks.domain.retries import AttemptResult
from afflux_postbacks.domain.safety import Refused, checked_url, first_allowed

USER_AGENT = "Afflux-Postbacks/1"


class PostbackSender:
    """Calls partners' postback URLs; one connection pool for every host."""

    def __init__(self, *, timeout: float, allow_private: bool, max_body: int = 4096,
                 max_connections: int = 512) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.max_body = max_body
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout, cookies=no_cookies,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=128),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, url: str, idempotency_key: str) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._get(url, idempotency_key)
        except Refused as refused:
            return AttemptResult(None, f"refused: {refused}", time.perf_counter() - started, refused=True)
        except TimeoutError:
            return AttemptResult(None, f"timed out after {self.timeout:g}s", time.perf_counter() - started)
        except (httpx.HTTPError, OSError) as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            return AttemptResult(None, reason, time.perf_counter() - started)
        latency = time.perf_counter() - started
        if 200 <= status < 300:
            return AttemptResult(status, None, latency)
        return AttemptResult(status, f"HTTP {status}", latency)

    async def _get(self, url: str, idempotency_key: str) -> int:
        scheme, host, port = checked_url(url)
        address = first_allowed(await _resolve(host, port), self.allow_private)
        parts = urlsplit(url)
        pinned_host = f"[{address}]" if ":" in address else address
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (f"{userinfo}@" if userinfo else "") + f"{pinned_host}:{port}"
        default_port = port == (443 if scheme == "https" else 80)
        host_header = host if default_port else f"{host}:{port}"
        if ":" in host and not default_port:
            host_header = f"[{host}]:{port}"
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        request = self._client.build_request(
            "GET", urlunsplit(parts._replace(netloc=netloc)), extensions=extensions,
            headers={"Host": host_header, "Idempotency-Key": idempotency_key},
        )
        response = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= self.max_body:
                    break
        finally:
            await response.aclose()
        self._client.cookies.clear()
        return response.status_code


async def _resolve(host: str, port: int) -> list[str]:
    with suppress(ValueError):
        return [str(ipaddress.ip_address(host))]  # a literal address: nothing to look up
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host}: {error}") from error
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
