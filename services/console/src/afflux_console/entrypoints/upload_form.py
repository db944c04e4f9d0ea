"""The console's one form that sends a file (a banner's image): multipart/form-data, bounded.

The other forms are urlencoded and read whole (``browser_session.read_form``, 256 KiB).
This one carries a file of up to the contract's 150 KiB beside a few text fields, so its
request is bounded at ``MAX_UPLOAD_BYTES``: the text fields' room and a file up to twice
the cap, so that a file a little too large is refused by partners at its field with the
rest of the form kept. A larger request is refused unread (413), whether its size is
declared (``UploadBound``, which answers with the console's page before the service-wide
1 MiB bound would answer JSON) or streamed (counted as it is read).

The parts are parsed by python-multipart through Starlette's parser (the one
``Request.form`` uses), from the bytes already read: one file, a few fields, no text part
over ``MAX_FORM_BYTES``. An urlencoded post (a text link or an email sent without a file)
is read as every other form is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Receive, Scope, Send

from afflux_console.entrypoints.browser_session import MAX_FORM_BYTES, Form, read_form
from afflux_contracts.creatives import MAX_IMAGE_BYTES

MAX_UPLOAD_BYTES = MAX_FORM_BYTES + 2 * MAX_IMAGE_BYTES
MAX_UPLOAD_FIELDS = 20
"""A creative's form has eight fields; room to spare, no room for a flood of parts."""


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it: its name and declared type only say what it claims."""

    filename: str
    content_type: str
    data: bytes


class UploadForm(Form):
    """A form's fields and its files (at most one)."""

    def __init__(self, fields: dict[str, list[str]], files: Mapping[str, Upload]) -> None:
        super().__init__(fields)
        self.files = dict(files)

    def file(self, name: str) -> Upload | None:
        return self.files.get(name)


class UploadRefused(Exception):
    """An upload the console will not read: too large (413) or not a readable form (422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def too_large(size: int) -> UploadRefused:
    return UploadRefused(413, f"This upload is {size / 1024:,.0f} KiB: a banner's image may be at most "
                              f"{MAX_IMAGE_BYTES // 1024} KiB. Choose a smaller file.")


async def read_upload(request: Request) -> UploadForm:
    """The posted form and its file, or ``UploadRefused``."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return UploadForm((await read_form(request)).fields, {})
    body = await _bounded_body(request)
    parser = MultiPartParser(request.headers, _once(body), max_files=1, max_fields=MAX_UPLOAD_FIELDS,
                             max_part_size=MAX_FORM_BYTES)
    try:
        parsed = await parser.parse()
    except MultiPartException as error:
        raise UploadRefused(422, f"The form could not be read ({error.message}); reload the page.") from error
    fields: dict[str, list[str]] = {}
    files: dict[str, Upload] = {}
    for name, value in parsed.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
            continue
        data = await value.read()
        await value.close()
        if value.filename or data:  # a file input left empty sends a nameless, empty part
            files[name] = Upload(value.filename or "", value.content_type or "", data)
    return UploadForm(fields, files)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


class UploadBound:
    """ASGI middleware: a POST to an upload path declaring more than ``MAX_UPLOAD_BYTES``
    is answered by ``answer`` (the form again, saying why) without reading its body, where
    the service-wide bound would answer a browser with JSON."""

    def __init__(self, app: ASGIApp, matches: Callable[[str], bool],
                 answer: Callable[[Request, UploadRefused], Awaitable[Response]]) -> None:
        self.app = app
        self.matches = matches
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.matches(scope["path"]):
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
                response = await self.answer(Request(scope, receive), too_large(int(declared)))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
