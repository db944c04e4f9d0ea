"""The baseline for click redirects: a bare ASGI app answering every request with a 302,
served by the same server stack as the services (uvicorn, uvloop, httptools)."""

from __future__ import annotations

from typing import Any

LOCATION = b"https://shop.example/landing?tid=0123456789abcdef0123456789abcdef"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", LOCATION), (b"cache-control", b"no-store"),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
