"""A mail worker's lease: a PostgreSQL advisory lock its own session holds while it lives.

The lock's objid is the worker's number (random); its class is ``WORKER_LOCK_CLASS``.
When the process dies (``kill -9`` included) its session ends and PostgreSQL frees the
lock at once, so other workers see a dead worker's claims as dead without waiting for
a timeout (``tables.claim``, ``tables.dead_handovers``). A lease whose connection
failed is taken again under a new number: the claims made under the old one are then
another worker's to take over, and the hand-over's compare-and-set keeps this worker
from handing over any of them.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from afflux_notifications.adapters.tables import WORKER_LOCK_CLASS


class PostgresLease:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.worker = 0
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def hold(self) -> None:
        await self.release()
        connection = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
        while True:
            worker = secrets.randbelow(2**31 - 2) + 1
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                              (WORKER_LOCK_CLASS, worker))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                self.worker, self._connection = worker, connection
                return

    async def held(self) -> bool:
        """The lock's session answers, and the lock is still its own."""
        if self._connection is None or self._connection.closed:
            return False
        try:
            cursor = await self._connection.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 2 AND classid = %s::oid AND objid = %s::oid)",
                (WORKER_LOCK_CLASS, self.worker))
            row = await cursor.fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    async def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
