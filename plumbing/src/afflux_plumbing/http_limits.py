"""Bounds on what a caller may make a service read: body size and query-string length.

A service reads a request body into memory before validating it, so an unbounded
body is an unbounded allocation any caller can ask for. The bound holds whether the
size is declared (``Content-Length``: refused before a byte is read) or the body is
streamed (chunked: refused once the count passes it). Answers are the shared error
shape, like every other 4xx.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
"""Admin bodies are a few kilobytes; a megabyte leaves room for long lists of coupon codes."""
MAX_QUERY_BYTES = 8 * 1024
"""Tracking's five sub parameters of 500 characters each, percent-encoded, fit easily."""


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": None}}


class RequestLimits:
    """ASGI middleware enforcing ``max_body_bytes`` and ``max_query_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES,
                 max_query_bytes: int = MAX_QUERY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            message = f"the query string is longer than {self.max_query_bytes} bytes"
            return JSONResponse(_error("uri_too_long", message), status_code=414)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return JSONResponse(_error("payload_too_large", self._too_large()), status_code=413)
        return None

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that raises a 413 ``HTTPException`` once the body passes the bound:
        the route reading the body lets it through to the shared error handler."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        return counted
