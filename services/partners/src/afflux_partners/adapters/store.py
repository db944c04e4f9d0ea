"""The partners application on PostgreSQL: its event store, and the views its use cases
name (``ProgramViews``): the list indexes and the coupon register, on the plumbing's
``Table``.

The aggregates are the truth; a view row is written in the same transaction as the
aggregate's events (so it never disagrees with them) and holds only what a list filters
by, or which relationship a coupon code belongs to. ``seq`` orders a list (creation
order) and is what a page cursor names. A code belongs to one relationship across all
offers, whatever its case: the register's primary key turns a race between two writers
into an integrity error, which the use case retries (the retry sees the winner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from psycopg import sql

from afflux_partners.adapters.creatives import CREATIVES_DDL, CreativeTables
from afflux_partners.adapters.people import PEOPLE_DDL, PeopleTables
from afflux_partners.application.partners import Listing, Partners, ProgramViews
from afflux_partners.domain.offer import OFFER_CREATED, Offer
from afflux_partners.domain.partner import PARTNER_CREATED, Partner
from afflux_partners.domain.relationship import RELATIONSHIP_CREATED, Relationship
from afflux_partners.domain.smart_link import SMART_LINK_CREATED, SmartLink
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table, keys_param

PARTNER_INDEX = Table("partner_index", (
    "seq bigserial UNIQUE", "partner_id text", "name text NOT NULL", "email text NOT NULL",
    "status text NOT NULL", "tags text[] NOT NULL"), key=("partner_id",))
OFFER_INDEX = Table("offer_index", (
    "seq bigserial UNIQUE", "offer_id text", "name text NOT NULL", "status text NOT NULL",
    "visibility text NOT NULL"), key=("offer_id",))
RELATIONSHIP_INDEX = Table("relationship_index", (
    "seq bigserial UNIQUE", "relationship_id text", "offer_id text NOT NULL", "partner_id text NOT NULL",
    "standing text NOT NULL"), key=("relationship_id",))
SMART_LINK_INDEX = Table("smart_link_index", (
    "seq bigserial UNIQUE", "smart_link_id text", "name text NOT NULL"), key=("smart_link_id",))
COUPON_CODES = Table("coupon_codes", (
    "code_key text", "code text NOT NULL", "relationship_id uuid NOT NULL", "offer_id text NOT NULL",
    "partner_id text NOT NULL"), key=("code_key",))

DDL = [
    *PARTNER_INDEX.ddl(), *OFFER_INDEX.ddl(), *RELATIONSHIP_INDEX.ddl(), *SMART_LINK_INDEX.ddl(),
    *COUPON_CODES.ddl(),
    "CREATE INDEX IF NOT EXISTS partner_index_by_status ON {schema}.partner_index (status, seq)",
    "CREATE INDEX IF NOT EXISTS offer_index_by_status ON {schema}.offer_index (status, seq)",
    "CREATE INDEX IF NOT EXISTS relationship_index_by_offer ON {schema}.relationship_index (offer_id, seq)",
    "CREATE INDEX IF NOT EXISTS relationship_index_by_partner "
    "ON {schema}.relationship_index (partner_id, seq)",
    "CREATE INDEX IF NOT EXISTS coupon_codes_by_relationship ON {schema}.coupon_codes (relationship_id)",
]


class PartnersStore(Partners):
    """``Partners`` with its views on PostgreSQL."""

    view_ddl: ClassVar = [*DDL, *PEOPLE_DDL, *CREATIVES_DDL]

    def open_views(self) -> ProgramViews:
        return ProgramTables(self)

    def open_people(self) -> PeopleTables:
        """The register of applications and the users' credentials (``PeopleViews``)."""
        return PeopleTables(self)

    def open_creatives(self) -> CreativeTables:
        """The creative index (``CreativeViews``)."""
        return CreativeTables(self)


class ProgramTables:
    """``ProgramViews`` on the store's schema (reads through its ``query``)."""

    def __init__(self, store: PartnersStore) -> None:
        self.store = store
        self.schema = store.schema

    def partner_rows(self, partner: Partner) -> Sequence[Write]:
        row = {"partner_id": partner.partner_id, "name": partner.name, "email": partner.email,
               "status": partner.status, "tags": list(partner.tags)}
        return self._put(PARTNER_INDEX, row)

    def offer_rows(self, offer: Offer) -> Sequence[Write]:
        row = {"offer_id": offer.offer_id, "name": offer.name, "status": offer.status,
               "visibility": offer.visibility}
        return self._put(OFFER_INDEX, row)

    def smart_link_rows(self, smart_link: SmartLink) -> Sequence[Write]:
        row = {"smart_link_id": smart_link.smart_link_id, "name": smart_link.name}
        return self._put(SMART_LINK_INDEX, row)

    def relationship_rows(self, relationship: Relationship) -> Sequence[Write]:
        """Its index row, and exactly its coupon codes in the register."""
        row = {"relationship_id": relationship.id.hex, "offer_id": relationship.offer_id,
               "partner_id": relationship.partner_id, "standing": relationship.standing}
        forget = Write(COUPON_CODES.delete(self.schema, ("relationship_id",)),
                       keys_param([relationship.id], ("relationship_id",)))
        codes = COUPON_CODES.write(COUPON_CODES.insert(self.schema, skip_existing=False), [
            {"code_key": code.upper(), "code": code, "relationship_id": relationship.id,
             "offer_id": relationship.offer_id, "partner_id": relationship.partner_id}
            for code in relationship.coupon_codes])
        return [*self._put(RELATIONSHIP_INDEX, row), forget, *([codes] if codes is not None else [])]

    def codes_of_others(self, relationship: Relationship) -> list[dict[str, Any]]:
        statement = COUPON_CODES.select(self.schema, ("code_key",), order_by=("code_key",))
        rows = self.store.query(statement, keys_param([code.upper() for code in relationship.coupon_codes],
                                                      ("code_key",)))
        return [row for row in rows if row["relationship_id"] != relationship.id]

    def page(self, listing: Listing, after: int | None, limit: int) -> list[dict[str, Any]]:
        statement, params = _page(self.schema, listing, after, limit)
        return self.store.query(statement, params)

    def unindexed(self) -> list[tuple[str, UUID]]:
        events = self.store.table(self.store.tracked_recorder.events_table_name)
        found: list[tuple[str, UUID]] = []
        for kind, topic in (("partners", PARTNER_CREATED), ("offers", OFFER_CREATED),
                            ("relationships", RELATIONSHIP_CREATED), ("smart_links", SMART_LINK_CREATED)):
            index = _LISTED[kind][0]
            id_column = index.key[0]
            statement = sql.SQL(
                "SELECT e.originator_id FROM {} e WHERE e.topic = %s AND NOT EXISTS"
                " (SELECT 1 FROM {} i WHERE i.{} = replace(e.originator_id::text, '-', ''))"
                " ORDER BY e.notification_id"
            ).format(events, index.ident(self.schema), sql.Identifier(id_column))
            found += [(kind, row["originator_id"]) for row in self.store.query(statement, (topic,))]
        return found

    def _put(self, table: Table, row: dict[str, Any]) -> Sequence[Write]:
        columns = tuple(row)
        statement = table.upsert(self.schema, [name for name in columns if name not in table.key], columns)
        write = table.write(statement, [row])
        return [write] if write is not None else []


_LISTED = {"partners": (PARTNER_INDEX, "partner_id"), "offers": (OFFER_INDEX, "offer_id"),
           "relationships": (RELATIONSHIP_INDEX, "partner_id"),
           "partner_relationships": (RELATIONSHIP_INDEX, "offer_id"),
           "smart_links": (SMART_LINK_INDEX, "smart_link_id")}


def _page(schema: str, listing: Listing, after: int | None, limit: int) -> tuple[sql.Composed, list[object]]:
    """Ids and seqs of a page in creation order, one row more than ``limit`` (it says whether
    a next page exists). ``q`` matches the name (or email) or is the id (of an offer or a
    smart link: the index's own); an offer's relationships are filtered by their standing."""
    table, id_column = _LISTED[listing.kind]
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[object] = []

    def where(clause: str, *values: object) -> None:
        clauses.append(sql.SQL(clause))
        params.extend(values)

    if after is not None:
        where("seq > %s", after)
    if listing.status is not None:
        where("standing = %s" if table is RELATIONSHIP_INDEX else "status = %s", listing.status)
    if listing.offer_id is not None:
        where("offer_id = %s", listing.offer_id)
    if listing.partner_id is not None:
        where("partner_id = %s", listing.partner_id)
    if listing.tag is not None:
        where("%s = ANY(tags)", listing.tag)
    if listing.q is not None and listing.kind == "partners":
        pattern = _like(listing.q)
        where("(name ILIKE %s OR email ILIKE %s OR partner_id = %s)", pattern, pattern, listing.q)
    elif listing.q is not None:
        where(f"(name ILIKE %s OR {table.key[0]} = %s)", _like(listing.q), listing.q)
    statement = sql.SQL("SELECT {} AS id, seq FROM {} WHERE {} ORDER BY seq LIMIT %s").format(
        sql.Identifier(id_column), table.ident(schema), sql.SQL(" AND ").join(clauses))
    return statement, [*params, limit + 1]


def _like(text: str) -> str:
    """``text`` as a literal inside an ILIKE pattern (its % and _ match only themselves)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
