"""The coupon-code register: which relationship each code belongs to.

A shopper's coupon code is how a conversion without a click finds its partner,
so a code may belong to one relationship only, across all offers, and codes that
differ only in case are the same code. The register is written in the same
transaction as the relationship's events, so it never disagrees with them; its
primary key turns a race between two writers into an integrity error.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from psycopg import sql

from afflux_plumbing.store import Write

DDL = [
    "CREATE TABLE IF NOT EXISTS {schema}.coupon_codes ("
    " code_key text PRIMARY KEY, code text NOT NULL, relationship_id uuid NOT NULL,"
    " offer_id text NOT NULL, partner_id text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS coupon_codes_by_relationship ON {schema}.coupon_codes (relationship_id)",
]


def code_key(code: str) -> str:
    return code.upper()


def claims_of_others(
    table: sql.Identifier, codes: Sequence[str], relationship: UUID
) -> tuple[sql.Composed, tuple[object, ...]]:
    """The query for those of ``codes`` already held by another relationship."""
    statement = sql.SQL(
        "SELECT code, offer_id, partner_id FROM {} WHERE code_key = ANY(%s) AND relationship_id <> %s"
        " ORDER BY code_key"
    ).format(table)
    return statement, ([code_key(code) for code in codes], relationship)


def register(
    table: sql.Identifier, relationship: UUID, offer_id: str, partner_id: str, codes: Sequence[str]
) -> list[Write]:
    """Make ``codes`` exactly the codes this relationship holds."""
    writes = [Write(sql.SQL("DELETE FROM {} WHERE relationship_id = %s").format(table), (relationship,))]
    insert = sql.SQL(
        "INSERT INTO {} (code_key, code, relationship_id, offer_id, partner_id) VALUES (%s, %s, %s, %s, %s)"
    ).format(table)
    writes.extend(Write(insert, (code_key(code), code, relationship, offer_id, partner_id)) for code in codes)
    return writes
