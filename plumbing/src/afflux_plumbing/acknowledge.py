""""An acknowledged write is on the log": wait until the outbox relay has published
everything a service's store recorded so far.

The relay that publishes may run in another instance of the service (only the one
holding the relay lock publishes), so the wait reads the relay's recorded position in
PostgreSQL rather than asking a local relay object.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

from afflux_plumbing.relay import RELAY_TRACKING_NAME
from afflux_plumbing.store import TrackedApplication

POLL_SECONDS = 0.01


def published(app: TrackedApplication, timeout: float) -> bool:
    """Block until every event ``app`` has recorded by now is published (True), or
    ``timeout`` seconds pass (False: it stays in the outbox and is published later).

    Blocking by design: the partners API's routes run in FastAPI's thread pool."""
    recorder = app.tracked_recorder
    target = recorder.max_notification_id()
    if target is None:
        return True
    deadline = time.monotonic() + timeout
    while True:
        position = recorder.max_tracking_id(RELAY_TRACKING_NAME)
        if position is not None and position >= target:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def acknowledged(app: TrackedApplication, timeout: float, body: Any, status_code: int = 200) -> JSONResponse:
    """``body`` (JSON-able) with ``status_code`` once the write is on the log, else with 202
    and ``X-Afflux-Log: pending`` (it stays in the outbox and is published later)."""
    on_log = published(app, timeout)
    return JSONResponse(body, status_code=status_code if on_log else 202,
                        headers={"X-Afflux-Log": "published" if on_log else "pending"})
