"""The console's browser session: one cookie holding the staff credential, CSRF tokens,
and bounded form reading.

The cookie holds the bearer token ``POST /v1/staff/sessions`` handed out (or the token a
person signed in with): ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other
site's page sends it), ``Path=/console`` (only the pages see it), ``Secure`` when the
console is served over HTTPS (``AFFLUX_CONSOLE_SECURE_COOKIES``). Signing out ends the
session on the server, so a copied cookie stops working everywhere too.

A signed-in form's CSRF token is an HMAC of a fixed label keyed with the session's
token: a page of ours carries it, another site can neither read it nor compute it, and
every console instance derives the same one with no secret of its own to share. The
sign-in form (no session yet) uses a double-submit cookie instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response

SESSION_COOKIE = "afflux_console"
SIGNIN_COOKIE = "afflux_console_signin"
COOKIE_PATH = "/console"
MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = 2000
_LABEL = b"afflux-console-csrf-v1"


def csrf_token(credential: str) -> str:
    digest = hmac.new(credential.encode("utf-8", "surrogateescape"), _LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(given: str | None, credential: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), csrf_token(credential).encode())


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def signin_token_ok(given: str | None, cookie: str | None) -> bool:
    return bool(given and cookie) and hmac.compare_digest(str(given).encode(), str(cookie).encode())


def set_cookie(response: Response, name: str, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


def drop_cookie(response: Response, name: str, secure: bool) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure)


class Form:
    """An urlencoded form: the first value of a field, or all of them (checkboxes)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        return [value.strip() for value in self.fields.get(name, []) if value.strip()]

    def has(self, name: str) -> bool:
        return bool(self.fields.get(name))

    def names(self) -> list[str]:
        return list(self.fields)


async def read_form(request: Request) -> Form:
    """The request's form (bounded: anything larger or malformed is an empty form)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Form({})
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return Form({})
    return Form(fields)
