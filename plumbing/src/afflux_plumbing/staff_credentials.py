"""Staff credentials on every service: a view of ``afflux.staff.v1`` that admits the
staff's sessions and API tokens (a ``TokenSource`` of ``auth.Credentials``).

The console issues and ends credentials and changes users; each fact is on the staff
log, named by the credential's SHA-256 (never the credential). Every service with admin
routes keeps this view (``ServiceRuntime.credentials``): a replica consumer of every
partition, in memory for the request path and in two tables of the service's own schema
(``staff_users``, ``staff_credentials``), written in the consumer's transaction with its
position, so a restart loads the memory from them and resumes the log where they are.
The view has a store of its own in that schema (``StaffViewStore``: its positions and
inbox apart from the service's, which may read the staff log for its own ends, as the
console's audit trail does), on a pool of one connection, opened only while the service
is served (``StaffView``): a service built for a replay opens nothing, and its folds are
the service's own consumers, not this view.
Each handler applies its facts to the memory as it goes: the memory may run a moment
ahead of the tables, never behind (a failed run is applied again; each fact is
idempotent, and an ended credential stays ended).

A credential is checked at each call against the view as it is then:

- ended (signed out, revoked) or past its ``expires_at``: refused;
- its user unknown or disabled: refused (every session and token of a disabled user);
- else the principal acts in the user's role *now*: a role change applies at once to
  every live session, and a token never goes beyond its owner's role (its scopes are
  those it was issued with that the role still has).

So a revocation, a disabled user or a narrowed role is refused everywhere as soon as
each service has read the event: the consumer's lag on the staff log, well under a
second on a healthy broker. A credential issued a moment ago that a service has not
read yet is looked up again once it has caught up with the log (``caught_up``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import sql

from afflux_contracts import (
    BOOTSTRAP_OWNER,
    STAFF,
    StaffSessionEnded,
    StaffSessionStarted,
    StaffTokenIssued,
    StaffTokenRevoked,
    StaffUserCreated,
    StaffUserDisabled,
    StaffUserUpdated,
    utc_now,
)
from afflux_plumbing.auth import ROLES, Principal
from afflux_plumbing.catch_up import LogCatchUp, Positions
from afflux_plumbing.consume import TrackedConsumer
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.outage import Health, retrying
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import Handlers, Record, Run, handles
from afflux_plumbing.store import Changes, TrackedApplication, Write
from afflux_plumbing.tables import Table, keys_param
from afflux_plumbing.wiring import Subscription

SESSION_PREFIX = "afx_staff_"
"""A staff session's bearer token: this prefix and 43 URL-safe characters (256 bits)."""
TOKEN_PREFIX = "afx_token_"
"""A staff API token: this prefix and 43 URL-safe characters (256 bits)."""
SECRET_CHARS = 43
KEEP_ENDED = timedelta(days=1)
"""How long an expired credential's row is kept before it is pruned (it is refused by its
``expires_at`` meanwhile)."""

Kind = Literal["session", "token"]

USERS = Table("staff_users", (
    "user_id text", "role text NOT NULL", "disabled boolean NOT NULL", "version integer NOT NULL",
), key=("user_id",))
CREDENTIALS = Table("staff_credentials", (
    "token_sha256 text", "kind text NOT NULL", "credential_id text NOT NULL", "user_id text NOT NULL",
    "scopes text", "expires_at timestamptz", "ended boolean NOT NULL DEFAULT false",
), key=("token_sha256",))


class StaffViewStore(TrackedApplication):
    """Where a service's staff view keeps its positions and inbox (``staffview_*`` tables),
    beside the service's own store in its schema."""

    name = "StaffView"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        # One connection: the view writes a run now and then, and reads only at start.
        super().__init__({**(env or {}), "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"})


def new_secret(prefix: str) -> str:
    """A fresh credential: ``prefix`` and 256 random bits (shown once, kept as its hash)."""
    return prefix + secrets.token_urlsafe(32)


def sha256_hex(token: str) -> str:
    """The hex SHA-256 a credential is named by on the log."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class StaffUser:
    role: str
    disabled: bool
    version: int


@dataclass(frozen=True)
class StaffCredential:
    kind: Kind
    credential_id: str
    user_id: str
    scopes: frozenset[str] | None
    """A token's own scopes (None: a session, the role's)."""
    expires_at: datetime | None
    ended: bool = False

    def live(self, now: datetime) -> bool:
        return not self.ended and (self.expires_at is None or now < self.expires_at)


class StaffCredentials:
    """The staff view of one service: its run handlers, and the ``TokenSource`` it is."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        """Empty until ``attach``: a service's build makes it, its runtime fills it."""
        self.clock = clock
        self.users: dict[str, StaffUser] = {}
        self.credentials: dict[bytes, StaffCredential] = {}
        self._store: TrackedApplication | None = None
        self._catch_up: LogCatchUp | None = None
        self._positions: Positions | None = None
        self._bootstrap = ""

    def attach(self, store: TrackedApplication) -> None:
        """Keep the view in ``store``'s schema: create its tables, load the memory from them."""
        self._store = store
        self._create_tables()
        self._load()

    @property
    def store(self) -> TrackedApplication:
        if self._store is None:
            raise RuntimeError("the staff view is not attached to a store yet")
        return self._store

    # -- the token source -----------------------------------------------------------------

    def principal(self, presented: bytes) -> Principal | None:
        credential = self.credentials.get(presented)
        if credential is None or not credential.live(self.clock()):
            return None
        if credential.user_id == BOOTSTRAP_OWNER:
            role = "owner"
        else:
            user = self.users.get(credential.user_id)
            if user is None or user.disabled:
                return None
            role = user.role
        allowed = ROLES.get(role, frozenset())
        if credential.kind == "session":
            return Principal(credential.user_id, allowed, kind="staff", role=role)
        return Principal(credential.credential_id, allowed & (credential.scopes or frozenset()),
                         kind="token", role=role)

    def may_know_later(self, token: str) -> bool:
        """A staff-shaped token this view has not read of yet (one it knows, ended or not,
        is answered now: nothing later would change that but another event)."""
        return (self._positions is not None and token.startswith((SESSION_PREFIX, TOKEN_PREFIX))
                and len(token) == len(SESSION_PREFIX) + SECRET_CHARS
                and bytes.fromhex(sha256_hex(token)) not in self.credentials)

    async def caught_up(self, timeout: float) -> bool:
        if self._positions is None:
            return False
        if self._catch_up is None:  # made on first use: its Kafka client belongs to the serving loop
            self._catch_up = LogCatchUp(self._positions, STAFF.name, self._bootstrap)
        return await self._catch_up.caught_up(timeout)

    def follow(self, positions: Positions, bootstrap_servers: str) -> None:
        """Where this view's consumer is on the log (a ``TrackedConsumer``), so a credential
        not known yet can be looked up again once the view has caught up."""
        self._positions, self._bootstrap = positions, bootstrap_servers

    async def stop(self) -> None:
        if self._catch_up is not None:
            await self._catch_up.stop()

    # -- the run handlers ------------------------------------------------------------------

    @handles(StaffUserCreated, StaffUserUpdated, StaffUserDisabled)
    def on_users(self, run: Run) -> Changes:
        """A user's whole state: the newest version wins."""
        newest: dict[str, StaffUser] = {}
        for record in run:
            event = record.payload
            disabled = event.disabled or isinstance(event, StaffUserDisabled)
            user = StaffUser(event.role, disabled, event.version)
            known = self.users.get(event.user_id)
            if known is None or known.version < user.version:
                self.users[event.user_id] = newest[event.user_id] = user
        rows = [{"user_id": user_id, "role": user.role, "disabled": user.disabled, "version": user.version}
                for user_id, user in newest.items()]
        newer = {name: f"CASE WHEN excluded.version > {{table}}.version THEN excluded.{name} "
                       f"ELSE {{table}}.{name} END" for name in ("role", "disabled", "version")}
        return Changes(writes=_present([USERS.write(USERS.upsert(self.store.schema, newer), rows)]))

    @handles(StaffSessionStarted, StaffTokenIssued)
    def on_issued(self, run: Run) -> Changes:
        """New credentials (an ended one stays ended); expired ones are pruned."""
        rows = []
        for record in run:
            credential, digest = _issued(record)
            if digest not in self.credentials:
                self.credentials[digest] = credential
            rows.append(_row(digest, credential))
        return Changes(writes=_present([CREDENTIALS.write(CREDENTIALS.insert(self.store.schema), rows),
                                        *self._pruned()]))

    @handles(StaffSessionEnded, StaffTokenRevoked)
    def on_ended(self, run: Run) -> Changes:
        """Ended credentials: refused from now on (also if their start arrives later)."""
        rows = []
        for record in run:
            event = record.payload
            kind: Kind = "session" if isinstance(event, StaffSessionEnded) else "token"
            digest = bytes.fromhex(event.token_sha256)
            known = self.credentials.get(digest)
            ended = (StaffCredential(kind, _credential_id(event), event.user_id, None, None, ended=True)
                     if known is None else StaffCredential(known.kind, known.credential_id, known.user_id,
                                                           known.scopes, known.expires_at, ended=True))
            self.credentials[digest] = ended
            rows.append(_row(digest, ended))
        statement = CREDENTIALS.upsert(self.store.schema, ("ended",))
        return Changes(writes=_present([CREDENTIALS.write(statement, rows)]))

    # -- tables ----------------------------------------------------------------------------

    def _create_tables(self) -> None:
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            # Services of one schema may start together: one at a time creates the tables.
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"afflux-staff:{self.store.schema}",))
            for ddl in [*USERS.ddl(), *CREDENTIALS.ddl()]:
                curs.execute(sql.SQL(ddl).format(schema=sql.Identifier(self.store.schema)))

    def _load(self) -> None:
        schema = sql.Identifier(self.store.schema)
        for row in self.store.query(sql.SQL("SELECT * FROM {}.staff_users").format(schema)):
            self.users[row["user_id"]] = StaffUser(row["role"], row["disabled"], row["version"])
        for row in self.store.query(sql.SQL("SELECT * FROM {}.staff_credentials").format(schema)):
            scopes = frozenset(row["scopes"].split(",")) if row["scopes"] is not None else None
            self.credentials[bytes.fromhex(row["token_sha256"])] = StaffCredential(
                row["kind"], row["credential_id"], row["user_id"], scopes, row["expires_at"], row["ended"])

    def _pruned(self) -> Sequence[Write | None]:
        """Credentials expired for a day: out of the memory and the table."""
        horizon = self.clock() - KEEP_ENDED
        gone = [digest for digest, c in list(self.credentials.items())
                if c.expires_at is not None and c.expires_at < horizon]
        for digest in gone:
            self.credentials.pop(digest, None)
        delete = CREDENTIALS.delete(self.store.schema)
        return [Write(delete, keys_param([digest.hex() for digest in gone], CREDENTIALS.key))] if gone else []


STAFF_VIEW = Subscription.of(StaffCredentials, "staff", [STAFF], every_partition=True)
"""The staff view's consumer, which every service with admin routes declares in its wiring
(``ServiceRuntime.credentials`` refuses to make the view otherwise)."""


class StaffView:
    """A service's staff view at work: opened, attached and consumed only while the
    service is served (``ServiceRuntime.credentials``), so building a service for a replay
    or a test opens nothing."""

    def __init__(self, credentials: StaffCredentials, database_url: str, schema: str,
                 bootstrap_servers: str, group_id: str, dead_letters: Publisher,
                 retry_later_limit: float) -> None:
        self.credentials = credentials
        self.database_url, self.schema = database_url, schema
        self.bootstrap_servers, self.group_id = bootstrap_servers, group_id
        self.dead_letters, self.retry_later_limit = dead_letters, retry_later_limit
        self.health = Health()
        self.consumer: TrackedConsumer | None = None

    @property
    def ready(self) -> bool:
        return self.consumer is not None and self.consumer.ready

    async def run(self) -> None:
        store = await retrying(lambda: asyncio.to_thread(open_store, StaffViewStore, self.database_url,
                                                         self.schema),
                               self.health, "opening the staff view's store")
        try:
            await retrying(lambda: asyncio.to_thread(self.credentials.attach, store), self.health,
                           "loading the staff view")
            self.consumer = TrackedConsumer(
                store=store, topics=STAFF_VIEW.topic_names, handlers=Handlers.of(self.credentials),
                bootstrap_servers=self.bootstrap_servers, group_id=self.group_id,
                dead_letters=self.dead_letters, retry_later_limit=self.retry_later_limit,
                every_partition=STAFF_VIEW.every_partition)
            self.credentials.follow(self.consumer, self.bootstrap_servers)
            await self.consumer.run()
        finally:
            await self.credentials.stop()
            store.close()


def _issued(record: Record[Any]) -> tuple[StaffCredential, bytes]:
    event = record.payload
    if isinstance(event, StaffSessionStarted):
        credential = StaffCredential("session", event.session_id, event.user_id, None, event.expires_at)
    else:
        credential = StaffCredential("token", event.token_id, event.user_id, frozenset(event.scopes),
                                     event.expires_at)
    return credential, bytes.fromhex(event.token_sha256)


def _credential_id(event: StaffSessionEnded | StaffTokenRevoked) -> str:
    return event.session_id if isinstance(event, StaffSessionEnded) else event.token_id


def _row(digest: bytes, credential: StaffCredential) -> dict[str, Any]:
    return {"token_sha256": digest.hex(), "kind": credential.kind, "credential_id": credential.credential_id,
            "user_id": credential.user_id,
            "scopes": ",".join(sorted(credential.scopes)) if credential.scopes is not None else None,
            "expires_at": credential.expires_at, "ended": credential.ended}


def _present(writes: Iterable[Write | None]) -> list[Write]:
    return [write for write in writes if write is not None]
