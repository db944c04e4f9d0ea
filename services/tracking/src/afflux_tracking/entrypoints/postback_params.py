"""Reading a postback's parameters from wherever an advertiser's server put them: the
query string, a form-encoded body or a JSON object (body values win over the query)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from afflux_plumbing.http import ApiError
from afflux_plumbing.http_json import loads_exact
from afflux_tracking.domain.postbacks import POSTBACK_FIELDS, InvalidPostback

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 100


async def postback_params(request: Request) -> dict[str, str]:
    """All parameters of a POST postback as strings; 4xx for a body we cannot read."""
    params = dict(request.query_params)
    body = await _read_body(request)
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        params.update(_json_params(body))
    else:
        params.update(_form_params(body))
    return params


async def _read_body(request: Request) -> bytes:
    """The body, refusing to buffer more than a postback could ever need."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"a postback body must be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _form_params(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(422, "invalid_request", f"the form body cannot be read: {error}") from error
    return dict(pairs)


def _json_params(body: bytes) -> dict[str, str]:
    """A JSON object's fields as strings; numbers are read as exact decimals, never floats."""
    try:
        document = loads_exact(body)
    except ValueError as error:  # JSONDecodeError (also past the nesting bound), bad UTF-8
        raise ApiError(422, "invalid_request", f"the JSON body cannot be read: {error}") from error
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_request", "the JSON body must be an object")
    texts = {name: _as_text(name, document.get(name)) for name in POSTBACK_FIELDS}
    return {name: text for name, text in texts.items() if text is not None}


def _as_text(name: str, value: Any) -> str | None:
    """A known field's value as text (fields we do not know are ignored, whatever they hold)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidPostback(name, f"{name} must be a string or a number")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
