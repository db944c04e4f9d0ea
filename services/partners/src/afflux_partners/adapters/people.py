"""``PeopleViews`` on PostgreSQL: the register of applications and the partner users'
credentials, in the partners schema beside the events (never on the log).

- ``applications``: one row per applying address (lower case): the register that makes
  a second sign-up from an address the first one, and the list staff review.
- ``user_logins``: a user's address (unique across partners: an address signs in for
  one partner), status and argon2id password hash. A removed user's row is deleted.
- ``user_tokens``: invitation and reset tokens by their SHA-256, with their expiry;
  spent (deleted) when used.
- ``owed_mails``: mail asked of notifications and not yet taken by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from afflux_partners.application.onboarding import Login, OwedMail, Token
from afflux_partners.domain.partner import Partner
from afflux_partners.domain.people import PartnerUser, UserStatus, email_key
from afflux_partners.domain.values import PartnerStatus
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table, keys_param

if TYPE_CHECKING:
    from afflux_partners.adapters.store import PartnersStore

APPLICATIONS = Table("applications", (
    "seq bigserial UNIQUE", "email_key text", "partner_id text NOT NULL UNIQUE", "status text NOT NULL"),
    key=("email_key",))
LOGINS = Table("user_logins", (
    "user_id text", "partner_id text NOT NULL", "email_key text NOT NULL UNIQUE", "status text NOT NULL",
    "password_hash text"), key=("user_id",))
TOKENS = Table("user_tokens", (
    "token_sha256 text", "user_id text NOT NULL", "partner_id text NOT NULL", "purpose text NOT NULL",
    "expires_at timestamptz NOT NULL"), key=("token_sha256",))
OWED_MAILS = Table("owed_mails", (
    "mail_id text", "template text NOT NULL", "recipient text NOT NULL", "data jsonb NOT NULL",
    "owed_since timestamptz NOT NULL DEFAULT now()"), key=("mail_id",))

PEOPLE_DDL = [
    *APPLICATIONS.ddl(), *LOGINS.ddl(), *TOKENS.ddl(), *OWED_MAILS.ddl(),
    "CREATE INDEX IF NOT EXISTS applications_by_status ON {schema}.applications (status, seq)",
    "CREATE INDEX IF NOT EXISTS user_tokens_by_user ON {schema}.user_tokens (user_id)",
]

VERDICTS = {PartnerStatus.PENDING: "pending", PartnerStatus.REJECTED: "declined"}
"""An application's status in the list: pending, declined, else approved."""


class PeopleTables:
    def __init__(self, store: PartnersStore) -> None:
        self.store = store
        self.schema = store.schema

    def application_of(self, email: str) -> str | None:
        rows = self.store.query(APPLICATIONS.select(self.schema), keys_param([email_key(email)],
                                                                             ("email_key",)))
        return rows[0]["partner_id"] if rows else None

    def application_rows(self, partner: Partner) -> Sequence[Write]:
        row = {"email_key": email_key(partner.email), "partner_id": partner.partner_id,
               "status": VERDICTS.get(partner.status, "approved")}
        write = APPLICATIONS.write(APPLICATIONS.upsert(self.schema, ("status",), tuple(row)), [row])
        return [write] if write is not None else []

    def applications(self, status: str | None, after: int | None, limit: int) -> list[dict[str, Any]]:
        statement = sql.SQL(
            "SELECT partner_id AS id, seq FROM {} WHERE seq > %s AND (%s::text IS NULL OR status = %s) "
            "ORDER BY seq LIMIT %s").format(APPLICATIONS.ident(self.schema))
        return self.store.query(statement, (after or 0, status, status, limit + 1))

    def login_of(self, email: str) -> Login | None:
        rows = self.store.query(LOGINS.select(self.schema, ("email_key",)),
                                keys_param([email_key(email)], ("email_key",)))
        return Login(rows[0]["user_id"], rows[0]["partner_id"], rows[0]["password_hash"],
                     rows[0]["status"]) if rows else None

    def login_rows(self, partner_id: str, user: PartnerUser,
                   password_hash: str | None = None) -> Sequence[Write]:
        if user.status is UserStatus.REMOVED:
            return [Write(LOGINS.delete(self.schema), keys_param([user.user_id], ("user_id",))),
                    *self.spend_tokens(user.user_id)]
        row = {"user_id": user.user_id, "partner_id": partner_id, "email_key": email_key(user.email),
               "status": user.status.value}
        columns: tuple[str, ...] = ("partner_id", "email_key", "status")
        if password_hash is not None:
            row["password_hash"] = password_hash
            columns = (*columns, "password_hash")
        write = LOGINS.write(LOGINS.upsert(self.schema, columns, tuple(row)), [row])
        return [write] if write is not None else []

    def token(self, token_sha256: str) -> Token | None:
        rows = self.store.query(TOKENS.select(self.schema), keys_param([token_sha256], ("token_sha256",)))
        return Token(rows[0]["user_id"], rows[0]["partner_id"], rows[0]["purpose"],
                     rows[0]["expires_at"]) if rows else None

    def token_rows(self, token_sha256: str, token: Token) -> Sequence[Write]:
        others = Write(TOKENS.delete(self.schema, ("user_id", "purpose")),
                       keys_param([{"user_id": token.user_id, "purpose": token.purpose}], ("user_id",
                                                                                           "purpose")))
        row = {"token_sha256": token_sha256, "user_id": token.user_id, "partner_id": token.partner_id,
               "purpose": token.purpose, "expires_at": token.expires_at}
        write = TOKENS.write(TOKENS.insert(self.schema, skip_existing=False), [row])
        return [others, *([write] if write is not None else [])]

    def spend_tokens(self, user_id: str) -> Sequence[Write]:
        return [Write(TOKENS.delete(self.schema, ("user_id",)), keys_param([user_id], ("user_id",)))]

    def owe(self, mail: OwedMail) -> Sequence[Write]:
        row = {"mail_id": mail.mail_id, "template": mail.template, "recipient": mail.recipient,
               "data": dict(mail.data)}
        write = OWED_MAILS.write(OWED_MAILS.insert(self.schema, tuple(row)), [row])
        return [write] if write is not None else []

    def owed(self, older_than: datetime) -> list[OwedMail]:
        rows = self.store.query(sql.SQL(
            "SELECT mail_id, template, recipient, data FROM {} WHERE owed_since < %s "
            "ORDER BY owed_since LIMIT 100"
        ).format(OWED_MAILS.ident(self.schema)), (older_than,))
        return [OwedMail(row["mail_id"], row["template"], row["recipient"], row["data"]) for row in rows]

    def paid(self, mail_id: str) -> None:
        self._execute(Write(OWED_MAILS.delete(self.schema), keys_param([mail_id], ("mail_id",))))

    def rehash(self, user_id: str, password_hash: str) -> None:
        write = LOGINS.write(LOGINS.update(self.schema, ("password_hash",)),
                             [{"user_id": user_id, "password_hash": password_hash}])
        if write is not None:
            self._execute(write)

    def _execute(self, write: Write) -> None:
        with self.store.tracked_recorder.datastore.transaction(commit=True) as curs:
            curs.execute(write.statement, write.params)
