"""Work that runs beside a service's HTTP app for as long as it is served (payouts' close
scheduler and drift watch, partners' owed mail): started with the app, cancelled when it
stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

from fastapi import FastAPI


def while_served(app: FastAPI, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Run ``work()`` as a task from the app's startup to its shutdown.

    One task per event loop the app is started in: a test may serve the same app in its
    own loop while a tool (schemathesis' ASGI runner) runs its lifespan in another, and a
    shutdown cancels only the task its own loop started (awaiting another loop's task is
    an error)."""
    tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    async def start() -> None:
        tasks[asyncio.get_running_loop()] = asyncio.create_task(work(), name=name)

    async def stop() -> None:
        task = tasks.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app.router.add_event_handler("startup", start)
    app.router.add_event_handler("shutdown", stop)
