"""The console's tables in PostgreSQL: accounts, their secrets, sessions, API tokens and
the audit trail, declared once (``afflux_plumbing.tables``).

``console_secrets`` holds each user's password hash (argon2id) and TOTP secret: this
table is the only place they are, and nothing reads it but sign-in and enrolment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import sql

from afflux_console.adapters.secrets import Argon2Passwords, TotpCodes
from afflux_console.application.audit import AuditPage, AuditQuery, Entry
from afflux_console.application.staff import Account, Secrets, Staff, StaffViews, TokenRow
from afflux_console.domain.staff import StaffSession, StaffToken, StaffUser
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table, keys_param

ACCOUNTS = Table(
    "console_accounts",
    (
        "user_id text",
        "email text NOT NULL",
        "name text NOT NULL",
        "role text NOT NULL",
        "disabled boolean NOT NULL",
        "second_factor boolean NOT NULL DEFAULT false",
        "created_at timestamptz NOT NULL",
    ),
    key=("user_id",),
)
SECRETS = Table(
    "console_secrets",
    (
        "user_id text",
        "password_hash text NOT NULL",
        "totp_secret text",
        "totp_pending text",
    ),
    key=("user_id",),
)
SESSIONS = Table(
    "console_sessions",
    (
        "session_id text",
        "user_id text NOT NULL",
        "token_sha256 text NOT NULL",
        "expires_at timestamptz NOT NULL",
        "ended boolean NOT NULL",
    ),
    key=("session_id",),
)
TOKENS = Table(
    "console_tokens",
    (
        "token_id text",
        "user_id text NOT NULL",
        "name text NOT NULL",
        "role text NOT NULL",
        "scopes text NOT NULL",
        "expires_at timestamptz",
        "revoked boolean NOT NULL",
        "issued_at timestamptz NOT NULL",
    ),
    key=("token_id",),
)
AUDIT = Table(
    "audit_entries",
    (
        "event_id text",
        "seq bigserial",
        "at timestamptz NOT NULL",
        "topic text NOT NULL",
        "action text NOT NULL",
        "actor_kind text NOT NULL",
        "actor_id text NOT NULL",
        "role text",
        "person text",
        "subject text",
        "subjects text[] NOT NULL",
    ),
    key=("event_id",),
)
AUDIT_COLUMNS = tuple(name for name in AUDIT.column_names if name != "seq")

INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS console_accounts_email ON {schema}.console_accounts (email)",
    "CREATE INDEX IF NOT EXISTS console_sessions_token ON {schema}.console_sessions (token_sha256)",
    "CREATE INDEX IF NOT EXISTS console_sessions_user ON {schema}.console_sessions (user_id) WHERE NOT ended",
    "CREATE INDEX IF NOT EXISTS console_tokens_user ON {schema}.console_tokens (user_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_entries_seq ON {schema}.audit_entries (seq)",
    "CREATE INDEX IF NOT EXISTS audit_entries_actor ON {schema}.audit_entries (actor_id, seq)",
    "CREATE INDEX IF NOT EXISTS audit_entries_person ON {schema}.audit_entries (person, seq)",
    "CREATE INDEX IF NOT EXISTS audit_entries_subjects ON {schema}.audit_entries USING gin (subjects)",
)


class ConsoleStore(Staff):
    """The console's composition root of storage: its use cases over these tables."""

    views: ConsoleTables
    view_ddl = (*ACCOUNTS.ddl(), *SECRETS.ddl(), *SESSIONS.ddl(), *TOKENS.ddl(), *AUDIT.ddl(), *INDEXES)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env, hasher=Argon2Passwords(), codes=TotpCodes())

    def open_views(self) -> ConsoleTables:
        return ConsoleTables(self)


class ConsoleTables(StaffViews):
    """``StaffViews`` and ``AuditTables`` on the console's schema."""

    def __init__(self, store: Staff) -> None:
        self.store = store

    @property
    def schema(self) -> str:
        return self.store.schema

    def _rows(self, statement: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        return self.store.query(sql.SQL(statement).format(schema=sql.Identifier(self.schema)), params)

    # writes

    def account_rows(self, user: StaffUser, created_at: datetime | None = None) -> Sequence[Write]:
        row = {
            "user_id": user.user_id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "disabled": user.disabled,
            "created_at": created_at,
        }
        if created_at is not None:
            return _present([ACCOUNTS.write(ACCOUNTS.insert(self.schema, tuple(row)), [row])])
        row.pop("created_at")
        return _present(
            [ACCOUNTS.write(ACCOUNTS.update(self.schema, ("email", "name", "role", "disabled")), [row])]
        )

    def secret_rows(self, user_id: str, secrets: Secrets) -> Sequence[Write]:
        row = {
            "user_id": user_id,
            "password_hash": secrets.password_hash,
            "totp_secret": secrets.totp_secret,
            "totp_pending": secrets.totp_pending,
        }
        flag = {"user_id": user_id, "second_factor": secrets.totp_secret is not None}
        return _present(
            [
                SECRETS.write(
                    SECRETS.upsert(self.schema, ("password_hash", "totp_secret", "totp_pending")), [row]
                ),
                ACCOUNTS.write(ACCOUNTS.update(self.schema, ("second_factor",)), [flag]),
            ]
        )

    def session_rows(self, sessions: Iterable[StaffSession]) -> Sequence[Write]:
        rows = [
            {
                "session_id": s.session_id,
                "user_id": s.user_id,
                "token_sha256": s.token_sha256,
                "expires_at": s.expires_at,
                "ended": s.ended,
            }
            for s in sessions
        ]
        return _present([SESSIONS.write(SESSIONS.upsert(self.schema, ("ended",)), rows)])

    def token_rows(self, token: StaffToken, issued_at: datetime | None = None) -> Sequence[Write]:
        if issued_at is None:
            row = {"token_id": token.token_id, "revoked": token.revoked}
            return _present([TOKENS.write(TOKENS.update(self.schema, ("revoked",)), [row])])
        row = {
            "token_id": token.token_id,
            "user_id": token.user_id,
            "name": token.name,
            "role": token.role,
            "scopes": ",".join(token.scopes),
            "expires_at": token.expires_at,
            "revoked": token.revoked,
            "issued_at": issued_at,
        }
        return _present([TOKENS.write(TOKENS.insert(self.schema), [row])])

    # reads

    def account_by_email(self, email: str) -> Account | None:
        rows = self._rows("SELECT * FROM {schema}.console_accounts WHERE email = %s", (email,))
        return _account(rows[0]) if rows else None

    def account(self, user_id: str) -> Account | None:
        rows = self._rows("SELECT * FROM {schema}.console_accounts WHERE user_id = %s", (user_id,))
        return _account(rows[0]) if rows else None

    def accounts(self) -> list[Account]:
        return [
            _account(row)
            for row in self._rows("SELECT * FROM {schema}.console_accounts ORDER BY created_at, user_id")
        ]

    def secrets(self, user_id: str) -> Secrets | None:
        rows = self._rows("SELECT * FROM {schema}.console_secrets WHERE user_id = %s", (user_id,))
        return (
            Secrets(rows[0]["password_hash"], rows[0]["totp_secret"], rows[0]["totp_pending"])
            if rows
            else None
        )

    def session_id_of(self, token_sha256: str) -> str | None:
        rows = self._rows(
            "SELECT session_id FROM {schema}.console_sessions WHERE token_sha256 = %s AND NOT ended",
            (token_sha256,),
        )
        return rows[0]["session_id"] if rows else None

    def live_session_ids(self, user_id: str) -> list[str]:
        rows = self._rows(
            "SELECT session_id FROM {schema}.console_sessions WHERE user_id = %s AND NOT ended "
            "AND expires_at > now()",
            (user_id,),
        )
        return [row["session_id"] for row in rows]

    def tokens(self, user_id: str | None) -> list[TokenRow]:
        rows = self._rows(
            "SELECT * FROM {schema}.console_tokens WHERE %(user)s::text IS NULL OR user_id = %(user)s "
            "ORDER BY issued_at, token_id",
            {"user": user_id},
        )
        return [_token(row) for row in rows]

    def token(self, token_id: str) -> TokenRow | None:
        rows = self._rows("SELECT * FROM {schema}.console_tokens WHERE token_id = %s", (token_id,))
        return _token(rows[0]) if rows else None

    # the audit trail

    def token_owners(self, token_ids: Sequence[str]) -> Mapping[str, str]:
        statement = TOKENS.select(self.schema, columns=("token_id", "user_id"))
        return {
            row["token_id"]: row["user_id"]
            for row in self.store.query(statement, keys_param(token_ids, TOKENS.key))
        }

    def entries_written(self, entries: Sequence[Entry]) -> Sequence[Write]:
        rows = [
            {
                "event_id": e.event_id,
                "at": e.at,
                "topic": e.topic,
                "action": e.action,
                "actor_kind": e.actor_kind,
                "actor_id": e.actor_id,
                "role": e.role,
                "person": e.person,
                "subject": e.subject,
                "subjects": list(e.subjects),
            }
            for e in entries
        ]
        return _present([AUDIT.write(AUDIT.insert(self.schema, AUDIT_COLUMNS), rows)])

    def entries(self, query: AuditQuery, after: int | None, limit: int) -> AuditPage:
        rows = self._rows(
            "SELECT * FROM {schema}.audit_entries "
            "WHERE (%(actor)s::text IS NULL OR actor_id = %(actor)s OR person = %(actor)s) "
            "AND (%(subject)s::text IS NULL OR subjects @> ARRAY[%(subject)s::text]) "
            "AND (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
            "AND (%(after)s::bigint IS NULL OR seq < %(after)s) "
            "ORDER BY seq DESC LIMIT %(limit)s",
            {
                "actor": query.actor,
                "subject": query.subject,
                "since": query.since,
                "after": after,
                "limit": limit + 1,
            },
        )
        entries = [
            Entry(
                row["event_id"],
                row["at"],
                row["topic"],
                row["action"],
                row["actor_kind"],
                row["actor_id"],
                row["role"],
                row["person"],
                row["subject"],
                tuple(row["subjects"]),
            )
            for row in rows[:limit]
        ]
        return AuditPage(entries, rows[limit - 1]["seq"] if len(rows) > limit else None)


def _account(row: Mapping[str, Any]) -> Account:
    return Account(
        row["user_id"],
        row["email"],
        row["name"],
        row["role"],
        row["disabled"],
        row["second_factor"],
        row["created_at"],
    )


def _token(row: Mapping[str, Any]) -> TokenRow:
    return TokenRow(
        row["token_id"],
        row["user_id"],
        row["name"],
        row["role"],
        tuple(scope for scope in row["scopes"].split(",") if scope),
        row["expires_at"],
        row["revoked"],
        row["issued_at"],
    )


def _present(writes: Iterable[Write | None]) -> list[Write]:
    return [write for write in writes if write is not None]
