"""The operations page: service health, consumer lag, dead letters and redriving one, the
keys they block with redriving a key's letters in order and discarding a held letter
(after a page that says what it does), over the console's own operations API
(``ops_http``), called as the signed-in person: the API decides who may (``dlq.redrive``),
and the page offers the buttons only to them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from afflux_console.adapters.service_apis import CONSOLE, Refused
from afflux_console.entrypoints.pages import NOTICES, Console, PageError, Viewer


def _consumers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lag summed per consumer and topic, worst first (the partitions behind them)."""
    summed: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"lag": 0, "behind": []})
    for row in rows:
        entry = summed[(row["consumer"], row["topic"])]
        entry["lag"] += row["lag"]
        if row["lag"]:
            entry["behind"].append(row)
    return sorted(
        ({"consumer": c, "topic": t, **v} for (c, t), v in summed.items()),
        key=lambda e: (-e["lag"], e["consumer"], e["topic"]),
    )


async def operations(
    console: Console, viewer: Viewer, request: Request, error: str | None = None, status: int = 200
) -> Response:
    view = await console.read(viewer, CONSOLE, "/v1/operations")
    return console.page(
        "operations.html",
        viewer,
        status,
        services=view["services"],
        consumers=_consumers(view["lag"]),
        letters=view["dead_letters"],
        blocked=[{**key, "discard": _discard_link(key["first"])} for key in view["blocked"]],
        problems=view["problems"],
        error=error,
        notice=console.notice(request),
    )


async def redrive(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    try:
        body = {
            "topic": form.get("topic"),
            "partition": int(form.get("partition") or -1),
            "offset": int(form.get("offset") or -1),
        }
    except ValueError:
        raise PageError(422, "That dead letter's position is not valid.") from None
    return await _act(console, viewer, request, "/v1/dead-letters/redrive", body, "redriven")


def _discard_link(letter: dict[str, Any]) -> str:
    """The confirmation page of discarding ``letter`` (a held letter as the API gives it)."""
    fields = {name: letter[name] for name in ("store", "topic", "key", "digest")}
    return f"/console/operations/discard?{urlencode(fields)}"


async def redrive_key(console: Console, request: Request) -> Response:
    """Send a blocked key's held letters back to its topic, in the key's order."""
    viewer, form = await console.posted(request)
    body = {"topic": form.get("topic"), "key": form.get("key")}
    return await _act(console, viewer, request, "/v1/dead-letters/redrive-key", body, "key_redriven")


async def discard_page(console: Console, request: Request) -> Response:
    """What discarding this held letter does, before it is done: a discard cannot be undone
    (the key's later records go ahead without it)."""
    viewer = await console.viewer(request)
    fields = {name: request.query_params.get(name, "") for name in ("store", "topic", "key", "digest")}
    letter = await console.read(viewer, CONSOLE, "/v1/dead-letters/held", **fields)
    return console.page("discard_letter.html", viewer, letter=letter)


async def discard(console: Console, request: Request) -> Response:
    viewer, form = await console.posted(request)
    body = {name: form.get(name) for name in ("store", "topic", "key", "digest")}
    return await _act(console, viewer, request, "/v1/dead-letters/discard", body, "discarded")


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/operations")
    async def page(request: Request) -> Response:
        return await operations(console, await console.viewer(request), request)

    @router.post("/console/operations/redrive")
    async def redrive_letter(request: Request) -> Response:
        return await redrive(console, request)

    @router.post("/console/operations/redrive-key")
    async def redrive_blocked_key(request: Request) -> Response:
        return await redrive_key(console, request)

    @router.get("/console/operations/discard")
    async def confirm_discard(request: Request) -> Response:
        return await discard_page(console, request)

    @router.post("/console/operations/discard")
    async def discard_letter(request: Request) -> Response:
        return await discard(console, request)

    NOTICES.update(
        {
            "redriven": "The dead letter was sent back to its topic.",
            "key_redriven": "The key's held letters were sent back to their topic, in order.",
            "discarded": "The held letter was discarded: its key no longer waits for it.",
        }
    )
    return router


async def _act(console: Console, viewer: Viewer, request: Request, path: str, body: dict[str, Any],
               notice: str) -> Response:
    """Post ``body`` to the console API's ``path``; back to the page saying ``notice``, or the
    page again with the API's refusal (signed out or forbidden: the error page)."""
    try:
        await console.write(viewer, "POST", CONSOLE, path, body)
    except Refused as refused:
        if refused.status in (401, 403):
            raise
        return await operations(console, viewer, request, refused.message, refused.status)
    return console.done("/console/operations", notice)
