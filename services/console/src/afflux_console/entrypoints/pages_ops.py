"""The operations page: service health, consumer lag, dead letters and redriving one,
over the console's own operations API (``ops_http``), called as the signed-in person."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

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
    try:
        await console.write(viewer, "POST", CONSOLE, "/v1/dead-letters/redrive", body)
    except Refused as refused:
        if refused.status in (401, 403):  # signed out, or forbidden: the error page
            raise
        return await operations(console, viewer, request, refused.message, refused.status)
    return console.done("/console/operations", "redriven")


def routes(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/console/operations")
    async def page(request: Request) -> Response:
        return await operations(console, await console.viewer(request), request)

    @router.post("/console/operations/redrive")
    async def redrive_letter(request: Request) -> Response:
        return await redrive(console, request)

    NOTICES.update({"redriven": "The dead letter was sent back to its topic."})
    return router
