"""Settings -> the explicit eventsourcing environment of one service's event store.

Each service keeps its events, tracking positions and views in its own
PostgreSQL schema; eventsourcing never creates schemas, so we do.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.application import Application
from psycopg import sql

A = TypeVar("A", bound=Application[Any])


def postgres_env(database_url: str, schema: str) -> dict[str, str]:
    """eventsourcing's ``POSTGRES_*`` keys for a ``postgresql://`` URL (a socket
    directory in ``?host=`` works too, as the embedded server uses)."""
    url = urlsplit(database_url)
    query = parse_qs(url.query)
    host = query.get("host", [url.hostname or "127.0.0.1"])[0]
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(url.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        # Stored-function inserts skip the process recorder's tracking row (eventsourcing 9.5.6).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "CREATE_TABLE": "y",
    }


def ensure_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def open_store(store_type: type[A], database_url: str, schema: str) -> A:
    """Open a service's event-sourced application in its own schema, creating the schema
    (eventsourcing creates the tables, but never the schema).

    Instances of a service starting together would race on ``CREATE ... IF NOT EXISTS``
    (PostgreSQL then fails one on its catalog's unique index), so the schema's creation
    and the tables' are done under an advisory lock of the schema's name."""
    with psycopg.connect(database_url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"afflux-ddl:{schema}",))
        ensure_schema(database_url, schema)
        return store_type(env=postgres_env(database_url, schema))
