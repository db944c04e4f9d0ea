"""Work that runs beside the HTTP app for as long as it is served (the close scheduler, the
drift watch): started with the app, cancelled when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

from fastapi import FastAPI


def while_served(app: FastAPI, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Run ``work()`` as a task from the app's startup to its shutdown."""
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.append(asyncio.create_task(work(), name=name))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app.router.add_event_handler("startup", start)
    app.router.add_event_handler("shutdown", stop)
