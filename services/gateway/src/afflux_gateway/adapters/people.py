"""Partner users and pending sign-ups in the gateway's schema (``UserViews``,
``UserReads``, ``SignupBook``).

- ``partner_users``: who may sign in for which partner and in which role, as the
  partners log says (no password, no token: partners checks those), and since when
  their sessions count (``sessions_since``: their last password reset).
- ``signups``: a sign-up until its link is opened: the form's fields, the address it
  came from and when (the abuse limits count these rows), and the partner it became.
  Rows older than a day are forgotten as new ones come.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Jsonb

from afflux_contracts.partners import PartnerUserPasswordReset
from afflux_gateway.application.people import PortalUser, Signup, UserState
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table, keys_param

if TYPE_CHECKING:
    from afflux_gateway.adapters.views import GatewayStore

PARTNER_USERS = Table("partner_users", (
    "user_id text", "partner_id text NOT NULL", "email text NOT NULL", "name text", "role text NOT NULL",
    "status text NOT NULL", "seq bigserial", "sessions_since timestamptz"), key=("user_id",))
SIGNUPS = Table("signups", (
    "signup_id text", "email_key text NOT NULL", "address text NOT NULL", "data jsonb NOT NULL",
    "created_at timestamptz NOT NULL", "partner_id text"), key=("signup_id",))

PEOPLE_DDL = [
    *PARTNER_USERS.ddl(), *SIGNUPS.ddl(),
    "CREATE INDEX IF NOT EXISTS partner_users_by_partner ON {schema}.partner_users (partner_id, seq)",
    "CREATE INDEX IF NOT EXISTS signups_by_address ON {schema}.signups (address, created_at)",
    "CREATE INDEX IF NOT EXISTS signups_by_email ON {schema}.signups (email_key, created_at)",
]
_USER_COLUMNS = ("user_id", "partner_id", "email", "name", "role", "status")


class PeopleTables:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.schema = store.schema

    # -- the projection ---------------------------------------------------------------

    def save_users(self, users: Sequence[UserState]) -> Write | None:
        rows = [{"user_id": u.user_id, "partner_id": u.partner_id, "email": u.email, "name": u.name,
                 "role": u.role.value, "status": u.status.value} for u in users]
        return PARTNER_USERS.write(PARTNER_USERS.upsert(self.schema, _USER_COLUMNS[1:], _USER_COLUMNS), rows)

    def void_sessions_before(self, resets: Sequence[PartnerUserPasswordReset]) -> Write | None:
        rows = [{"user_id": r.user_id, "sessions_since": r.reset_at} for r in resets]
        return PARTNER_USERS.write(PARTNER_USERS.update(self.schema, ("sessions_since",)), rows)

    # -- reads ------------------------------------------------------------------------

    def user_session_live(self, user_id: str, partner_id: str, nonce: str, issued_at: datetime) -> bool:
        rows = self.store.query(sql.SQL(
            "SELECT 1 FROM {} WHERE user_id = %s AND partner_id = %s AND status = 'active' "
            "AND (sessions_since IS NULL OR sessions_since <= %s) "
            "AND NOT EXISTS (SELECT 1 FROM {}.ended_sessions WHERE nonce = %s)"
        ).format(PARTNER_USERS.ident(self.schema), sql.Identifier(self.schema)),
            (user_id, partner_id, issued_at, nonce))
        return bool(rows)

    def portal_user(self, user_id: str) -> PortalUser | None:
        rows = self.store.query(PARTNER_USERS.select(self.schema, columns=_USER_COLUMNS),
                                keys_param([user_id], ("user_id",)))
        return PortalUser(**rows[0]) if rows else None

    def partner_users(self, partner_id: str) -> list[PortalUser]:
        rows = self.store.query(sql.SQL(
            "SELECT user_id, partner_id, email, name, role, status FROM {} "
            "WHERE partner_id = %s AND status <> 'removed' ORDER BY seq").format(
                PARTNER_USERS.ident(self.schema)), (partner_id,))
        return [PortalUser(**row) for row in rows]

    # -- sign-ups ---------------------------------------------------------------------

    def recent_signups(self, address: str, email: str, since: datetime) -> tuple[list[datetime],
                                                                                 list[datetime]]:
        rows = self.store.query(sql.SQL(
            "SELECT created_at, address = %s AS same_address, email_key = %s AS same_email FROM {} "
            "WHERE (address = %s OR email_key = %s) AND created_at > %s ORDER BY created_at").format(
                SIGNUPS.ident(self.schema)), (address, email.lower(), address, email.lower(), since))
        return ([row["created_at"] for row in rows if row["same_address"]],
                [row["created_at"] for row in rows if row["same_email"]])

    def record_signup(self, signup: Signup, address: str) -> None:
        table = SIGNUPS.ident(self.schema)
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(sql.SQL("DELETE FROM {} WHERE created_at < now() - interval '1 day'").format(table))
            curs.execute(sql.SQL(
                "INSERT INTO {} (signup_id, email_key, address, data, created_at) VALUES (%s, %s, %s, %s, %s)"
            ).format(table), (signup.signup_id, signup.email.lower(), address, Jsonb(signup.data),
                              signup.created_at))

    def signup(self, signup_id: str) -> Signup | None:
        rows: list[dict[str, Any]] = self.store.query(SIGNUPS.select(self.schema),
                                                      keys_param([signup_id], ("signup_id",)))
        if not rows:
            return None
        row = rows[0]
        return Signup(row["signup_id"], row["data"]["email"], row["data"], row["created_at"],
                      row["partner_id"])

    def confirmed(self, signup_id: str, partner_id: str) -> None:
        write = SIGNUPS.write(SIGNUPS.update(self.schema, ("partner_id",)),
                              [{"signup_id": signup_id, "partner_id": partner_id}])
        if write is not None:
            with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
                curs.execute(write.statement, write.params)
