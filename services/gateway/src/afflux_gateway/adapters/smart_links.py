"""Smart links in the gateway's schema (``SmartLinkViews``, ``SmartLinkReads``).

``smart_links`` keeps each link's name and offers (``[{offer_id, weight, priority}]``, as
``SmartLinkSet`` lists them); a partner's read joins them with the offers and the
partner's relationships the gateway already keeps, so a link's offers show as they are
now (paused, newly approved) without a second copy of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from psycopg import sql

from afflux_contracts import SmartLinkSet
from afflux_gateway.adapters import tables as t
from afflux_gateway.application.reads import Row
from afflux_plumbing.store import Write
from afflux_plumbing.tables import Table

if TYPE_CHECKING:
    from afflux_gateway.adapters.views import GatewayStore

SMART_LINKS = Table("smart_links", ("smart_link_id text", "name text NOT NULL", "offers jsonb NOT NULL"),
                    key=("smart_link_id",))
SMART_LINKS_DDL = SMART_LINKS.ddl()


class SmartLinkTables:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.schema = store.schema

    def save_smart_links(self, smart_links: Sequence[SmartLinkSet]) -> Write | None:
        rows = [{"smart_link_id": s.smart_link_id, "name": s.name,
                 "offers": [offer.model_dump(mode="json") for offer in s.offers]} for s in smart_links]
        return SMART_LINKS.write(SMART_LINKS.upsert(self.schema, ("name", "offers")), rows)

    def smart_link_offers(self, partner_id: str) -> Sequence[Row]:
        return self.store.query(sql.SQL(
            "SELECT s.smart_link_id, s.name, o.offer_id, o.name AS offer_name, o.visibility, o.currency, "
            "o.payout, r.approved, r.payout AS custom_payout "
            "FROM {} s CROSS JOIN LATERAL jsonb_array_elements(s.offers) WITH ORDINALITY AS e(offer, ord) "
            "JOIN {} o ON o.offer_id = e.offer->>'offer_id' "
            "LEFT JOIN {} r ON r.offer_id = o.offer_id AND r.partner_id = %s "
            "WHERE o.status = 'active' AND (e.offer->>'weight')::int > 0 "
            "ORDER BY s.name, s.smart_link_id, (e.offer->>'priority')::int, e.ord"
        ).format(SMART_LINKS.ident(self.schema), t.OFFERS.ident(self.schema),
                 t.RELATIONSHIPS.ident(self.schema)), (partner_id,))
