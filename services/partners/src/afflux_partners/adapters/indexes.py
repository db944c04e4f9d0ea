"""The list indexes of partners and offers: what the admin lists filter and page on.

The aggregates are the truth; a row here is written in the same transaction as the
aggregate's events (so it never disagrees with them) and holds only what a list
filters by. ``seq`` orders a list (creation order) and is what a page cursor names.
A store whose aggregates predate the index gets their rows at start (``missing_*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from afflux_plumbing.store import Write

DDL = [
    "CREATE TABLE IF NOT EXISTS {schema}.partner_index ("
    " seq bigserial UNIQUE, partner_id text PRIMARY KEY, name text NOT NULL, email text NOT NULL,"
    " status text NOT NULL, tags text[] NOT NULL)",
    "CREATE INDEX IF NOT EXISTS partner_index_by_status ON {schema}.partner_index (status, seq)",
    "CREATE TABLE IF NOT EXISTS {schema}.offer_index ("
    " seq bigserial UNIQUE, offer_id text PRIMARY KEY, name text NOT NULL, status text NOT NULL,"
    " visibility text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS offer_index_by_status ON {schema}.offer_index (status, seq)",
    "CREATE TABLE IF NOT EXISTS {schema}.relationship_index ("
    " seq bigserial UNIQUE, relationship_id text PRIMARY KEY, offer_id text NOT NULL,"
    " partner_id text NOT NULL, standing text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS relationship_index_by_offer ON {schema}.relationship_index (offer_id, seq)",
]


@dataclass(frozen=True)
class PartnerRow:
    partner_id: str
    name: str
    email: str
    status: str
    tags: Sequence[str]


@dataclass(frozen=True)
class OfferRow:
    offer_id: str
    name: str
    status: str
    visibility: str


@dataclass(frozen=True)
class RelationshipRow:
    relationship_id: str
    offer_id: str
    partner_id: str
    standing: str
    """approved, pending (the partner applied, no decision yet) or declined."""


@dataclass(frozen=True)
class Filter:
    """What a list asks for; ``None`` is "any"."""

    status: str | None = None
    tag: str | None = None
    q: str | None = None


def put_partner(table: sql.Identifier, row: PartnerRow) -> Write:
    statement = sql.SQL(
        "INSERT INTO {} (partner_id, name, email, status, tags) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (partner_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,"
        " status = EXCLUDED.status, tags = EXCLUDED.tags"
    ).format(table)
    return Write(statement, (row.partner_id, row.name, row.email, row.status, list(row.tags)))


def put_offer(table: sql.Identifier, row: OfferRow) -> Write:
    statement = sql.SQL(
        "INSERT INTO {} (offer_id, name, status, visibility) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (offer_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status,"
        " visibility = EXCLUDED.visibility"
    ).format(table)
    return Write(statement, (row.offer_id, row.name, row.status, row.visibility))


def put_relationship(table: sql.Identifier, row: RelationshipRow) -> Write:
    statement = sql.SQL(
        "INSERT INTO {} (relationship_id, offer_id, partner_id, standing) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (relationship_id) DO UPDATE SET standing = EXCLUDED.standing"
    ).format(table)
    return Write(statement, (row.relationship_id, row.offer_id, row.partner_id, row.standing))


def page_of_relationships(table: sql.Identifier, offer_id: str, standing: str | None, after: int | None,
                          limit: int) -> tuple[sql.Composed, list[object]]:
    """Partner ids and seqs of a page of an offer's relationships, oldest first."""
    clauses, params = _common(Filter(), after)
    clauses.append(sql.SQL("offer_id = %s"))
    params.append(offer_id)
    if standing is not None:
        clauses.append(sql.SQL("standing = %s"))
        params.append(standing)
    statement = sql.SQL("SELECT partner_id AS id, seq FROM {} WHERE {} ORDER BY seq LIMIT %s").format(
        table, sql.SQL(" AND ").join(clauses))
    return statement, [*params, limit + 1]


def _like(text: str) -> str:
    """``text`` as a literal inside an ILIKE pattern (its % and _ match only themselves)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_of_partners(table: sql.Identifier, where: Filter, after: int | None,
                     limit: int) -> tuple[sql.Composed, list[object]]:
    """Ids and seqs of a page of partners in creation order (one row more than ``limit``
    says whether a next page exists). ``q`` matches the name or email, or is the id."""
    clauses, params = _common(where, after)
    if where.tag is not None:
        clauses.append(sql.SQL("%s = ANY(tags)"))
        params.append(where.tag)
    if where.q is not None:
        clauses.append(sql.SQL("(name ILIKE %s OR email ILIKE %s OR partner_id = %s)"))
        params.extend([_like(where.q), _like(where.q), where.q])
    statement = sql.SQL("SELECT partner_id AS id, seq FROM {} WHERE {} ORDER BY seq LIMIT %s").format(
        table, sql.SQL(" AND ").join(clauses))
    return statement, [*params, limit + 1]


def page_of_offers(table: sql.Identifier, where: Filter, after: int | None,
                   limit: int) -> tuple[sql.Composed, list[object]]:
    """Ids and seqs of a page of offers in creation order; ``q`` matches the name or is the id."""
    clauses, params = _common(where, after)
    if where.q is not None:
        clauses.append(sql.SQL("(name ILIKE %s OR offer_id = %s)"))
        params.extend([_like(where.q), where.q])
    statement = sql.SQL("SELECT offer_id AS id, seq FROM {} WHERE {} ORDER BY seq LIMIT %s").format(
        table, sql.SQL(" AND ").join(clauses))
    return statement, [*params, limit + 1]


def _common(where: Filter, after: int | None) -> tuple[list[sql.Composable], list[object]]:
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[object] = []
    if after is not None:
        clauses.append(sql.SQL("seq > %s"))
        params.append(after)
    if where.status is not None:
        clauses.append(sql.SQL("status = %s"))
        params.append(where.status)
    return clauses, params


def missing(events_table: sql.Identifier, index: sql.Identifier, id_column: str,
            created_topic: str) -> tuple[sql.Composed, tuple[object, ...]]:
    """Aggregates created (``created_topic``) with no index row, in creation order."""
    statement = sql.SQL(
        "SELECT e.originator_id FROM {} e WHERE e.topic = %s AND NOT EXISTS"
        " (SELECT 1 FROM {} i WHERE i.{} = replace(e.originator_id::text, '-', ''))"
        " ORDER BY e.notification_id"
    ).format(events_table, index, sql.Identifier(id_column))
    return statement, (created_topic,)
