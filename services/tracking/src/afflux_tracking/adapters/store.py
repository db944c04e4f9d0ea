"""Tracking's store on PostgreSQL: the routing view's tables, the partners consumer's
positions and inbox (clicks and conversion reports go straight to the log: tracking
records no aggregates).

Partners events arrive in order per key only, so a relationship may be seen before
its offer, and a status change before the offer it changes. Every write is therefore
an upsert of one group of columns stamped with the event's ``occurred_at``, applied
only where the row does not hold a newer stamp for that group (last writer wins per
group): any arrival order and any redelivery leave the same row. A run's facts come
one per key (``routing_view.newest``), so one statement writes them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from psycopg import sql

from afflux_contracts import ConversionSecurity, OfferStatus, PartnerStatus, Visibility
from afflux_contracts import Targeting as PublishedTargeting
from afflux_plumbing.store import TrackedApplication, Write
from afflux_plumbing.tables import Table
from afflux_tracking.application.routing import security_of, targeting_of
from afflux_tracking.domain.alternatives import Alternatives, Candidate
from afflux_tracking.domain.click_caps import ClickCap
from afflux_tracking.domain.destinations import Destinations, LandingPage
from afflux_tracking.domain.routing import SmartLinkRoute
from afflux_tracking.domain.routing_view import (
    Fact,
    OfferDetails,
    OfferDetailsFact,
    OfferStatusFact,
    PartnerStatusFact,
    PostbackTokens,
    Relationship,
    RelationshipFact,
    RoutingView,
    SmartLinkFact,
    TokensFact,
)
from afflux_tracking.domain.security import PostbackSecurity
from afflux_tracking.domain.targeting import AllowDeny, Targeting

OFFERS = Table("offers", (
    "offer_id text",
    # details: OfferCreated / OfferUpdated
    "destination_url text", "fallback_url text", "visibility text", "security jsonb", "click_caps jsonb",
    "unique_click_hours integer", "deep_link_domains text[]", "landing_pages jsonb", "targeting jsonb",
    "fail_traffic jsonb", "details_at timestamptz",
    # status: the same, and OfferStatusChanged
    "status text", "status_at timestamptz",
    # tokens: OfferPostbackTokenRotated
    "token_sha256 text", "previous_token_sha256 text", "previous_valid_until timestamptz",
    "token_at timestamptz",
), key=("offer_id",))
PARTNERS = Table("partners", ("partner_id text", "status text NOT NULL", "status_at timestamptz NOT NULL"),
                 key=("partner_id",))
RELATIONSHIPS = Table("relationships", (
    "offer_id text", "partner_id text", "approved boolean NOT NULL", "set_at timestamptz NOT NULL",
    "coupon_codes text[] NOT NULL DEFAULT '{{}}'", "click_caps jsonb", "targeting jsonb",
), key=("offer_id", "partner_id"))
SMART_LINKS = Table("smart_links", (
    "smart_link_id text", "offers jsonb NOT NULL", "fallback_url text", "set_at timestamptz NOT NULL",
), key=("smart_link_id",))

DETAILS = ("destination_url", "fallback_url", "visibility", "security", "click_caps", "unique_click_hours",
           "deep_link_domains", "landing_pages", "targeting", "fail_traffic")
TOKENS = ("token_sha256", "previous_token_sha256", "previous_valid_until")
RELATIONSHIP = ("approved", "coupon_codes", "click_caps", "targeting")
SMART_LINK = ("offers", "fallback_url")


def newest_wins(stamp: str, columns: Sequence[str]) -> dict[str, str]:
    """``upsert`` updates of one group of columns under which the newer stamp wins: the
    group (and its stamp) is taken from the new row only if the row has none as new."""
    newer = f"{{table}}.{stamp} IS NULL OR {{table}}.{stamp} <= excluded.{stamp}"
    return {name: f"CASE WHEN {newer} THEN excluded.{name} ELSE {{table}}.{name} END"
            for name in (*columns, stamp)}


class TrackingStore(TrackedApplication):
    """The routing view's tables (``RoutingTables``), with the consumer's positions and inbox."""

    name = "Tracking"
    view_ddl: ClassVar = [*OFFERS.ddl(), *PARTNERS.ddl(), *RELATIONSHIPS.ddl(), *SMART_LINKS.ddl()]

    def set_offer_details(self, facts: Sequence[OfferDetailsFact]) -> Sequence[Write]:
        rows = [{"offer_id": f.key, **_details_row(f.value), "details_at": f.at} for f in facts]
        return self._upsert(OFFERS, "details_at", DETAILS, rows)

    def set_offer_statuses(self, facts: Sequence[OfferStatusFact]) -> Sequence[Write]:
        rows = [{"offer_id": f.key, "status": f.value, "status_at": f.at} for f in facts]
        return self._upsert(OFFERS, "status_at", ("status",), rows)

    def rotate_tokens(self, facts: Sequence[TokensFact]) -> Sequence[Write]:
        rows = [{"offer_id": f.key, "token_sha256": f.value.current,
                 "previous_token_sha256": f.value.previous, "previous_valid_until": f.value.previous_until,
                 "token_at": f.at} for f in facts]
        return self._upsert(OFFERS, "token_at", TOKENS, rows)

    def set_partner_statuses(self, facts: Sequence[PartnerStatusFact]) -> Sequence[Write]:
        rows = [{"partner_id": f.key, "status": f.value, "status_at": f.at} for f in facts]
        return self._upsert(PARTNERS, "status_at", ("status",), rows)

    def set_relationships(self, facts: Sequence[RelationshipFact]) -> Sequence[Write]:
        rows = [{"offer_id": f.key[0], "partner_id": f.key[1], "approved": f.value.approved,
                 "coupon_codes": list(f.value.coupon_codes), "click_caps": _caps_row(f.value.click_caps),
                 "targeting": _targeting_row(f.value.targeting), "set_at": f.at} for f in facts]
        return self._upsert(RELATIONSHIPS, "set_at", RELATIONSHIP, rows)

    def set_smart_links(self, facts: Sequence[SmartLinkFact]) -> Sequence[Write]:
        rows = [{"smart_link_id": f.key, "offers": _alternatives_row(f.value.offers),
                 "fallback_url": f.value.fallback_url, "set_at": f.at} for f in facts]
        return self._upsert(SMART_LINKS, "set_at", SMART_LINK, rows)

    def load(self, view: RoutingView) -> None:
        for row in self._all(OFFERS):
            offer_id = row["offer_id"]
            if row["details_at"] is not None:
                view.set_offer_details(Fact(offer_id, _details(row), row["details_at"]))
            if row["status_at"] is not None:
                view.set_offer_status(Fact(offer_id, OfferStatus(row["status"]), row["status_at"]))
            if row["token_at"] is not None:
                tokens = PostbackTokens(row["token_sha256"], row["previous_token_sha256"],
                                        row["previous_valid_until"])
                view.rotate_tokens(Fact(offer_id, tokens, row["token_at"]))
        for row in self._all(PARTNERS):
            view.set_partner_status(Fact(row["partner_id"], PartnerStatus(row["status"]), row["status_at"]))
        for row in self._all(RELATIONSHIPS):
            relationship = Relationship(row["approved"], tuple(row["coupon_codes"]), _caps(row["click_caps"]),
                                        _targeting(row["targeting"]))
            view.set_relationship(Fact((row["offer_id"], row["partner_id"]), relationship, row["set_at"]))
        for row in self._all(SMART_LINKS):
            offers = _alternatives(row["offers"])
            smart_link = SmartLinkRoute(row["smart_link_id"], offers, row["fallback_url"])
            view.set_smart_link(Fact(row["smart_link_id"], smart_link, row["set_at"]))

    def _upsert(self, table: Table, stamp: str, columns: Sequence[str],
                rows: Sequence[Mapping[str, Any]]) -> Sequence[Write]:
        statement = table.upsert(self.schema, newest_wins(stamp, columns), (*table.key, *columns, stamp))
        write = table.write(statement, rows)
        return [write] if write is not None else []

    def _all(self, table: Table) -> list[Any]:
        """Every row of a view table: the memory view is rebuilt from them at start."""
        return self.query(sql.SQL("SELECT * FROM {}").format(table.ident(self.schema)))


def _details_row(details: OfferDetails) -> dict[str, Any]:
    return {"destination_url": details.destination_url, "fallback_url": details.fallback_url,
            "visibility": details.visibility, "security": _security_row(details.security),
            "click_caps": _caps_row(details.click_caps), "unique_click_hours": details.unique_click_hours,
            "deep_link_domains": list(details.destinations.deep_link_domains),
            "landing_pages": [{"id": page.id, "url": page.url, "weight": page.weight}
                              for page in details.destinations.landing_pages],
            "targeting": _targeting_row(details.targeting),
            "fail_traffic": (_alternatives_row(details.fail_traffic)
                             if details.fail_traffic is not None else None)}


def _details(row: Mapping[str, Any]) -> OfferDetails:
    stored = row["security"]
    security = None
    if stored is not None:  # stored as the published ConversionSecurity (tokens as hashes)
        security = security_of(ConversionSecurity.model_validate(stored))
    pages = tuple(LandingPage(page["id"], page["url"], page["weight"]) for page in row["landing_pages"] or ())
    destinations = Destinations(tuple(row["deep_link_domains"] or ()), pages)
    targeting = _targeting(row["targeting"])
    fail_traffic = _alternatives(row["fail_traffic"]) if row["fail_traffic"] is not None else None
    return OfferDetails(row["destination_url"], Visibility(row["visibility"]), row["fallback_url"], security,
                        _caps(row["click_caps"]), row["unique_click_hours"] or 24, destinations, targeting,
                        fail_traffic)


def _security_row(security: PostbackSecurity | None) -> dict[str, Any] | None:
    if security is None:
        return None
    return {"token_required": security.token_required, "token_sha256": security.token_sha256,
            "allowed_ips": [str(network) for network in security.allowed_ips],
            "pixel_allowed": security.pixel_allowed}


def _targeting(stored: Any) -> Targeting | None:
    """An offer's or a relationship's targeting, stored as the published ``Targeting``."""
    return targeting_of(PublishedTargeting.model_validate(stored)) if stored is not None else None


def _targeting_row(targeting: Targeting | None) -> dict[str, Any] | None:
    """As the published ``Targeting`` (what ``targeting_of`` reads back)."""
    if targeting is None:
        return None

    def lists(given: AllowDeny) -> dict[str, list[str]]:
        return {"allow": sorted(given.allow), "deny": sorted(given.deny)}

    parting = targeting.day_parting
    return {"countries": lists(targeting.countries), "devices": lists(targeting.devices),
            "operating_systems": lists(targeting.operating_systems), "browsers": lists(targeting.browsers),
            "referrer_domains": {"allow": list(targeting.referrer_domains.allow),
                                 "deny": list(targeting.referrer_domains.deny)},
            "day_parting": None if parting is None else {
                "time_zone": getattr(parting.time_zone, "key", "UTC"), "weekdays": sorted(parting.weekdays),
                "hours": sorted(parting.hours)}}


def _alternatives_row(alternatives: Alternatives) -> list[list[dict[str, Any]]]:
    """Its tiers in order, each a list of ``{offer_id, weight}``."""
    return [[{"offer_id": c.offer_id, "weight": c.weight} for c in tier] for tier in alternatives.tiers]


def _alternatives(stored: Any) -> Alternatives:
    return Alternatives(tuple(tuple(Candidate(c["offer_id"], c["weight"]) for c in tier) for tier in stored))


def _caps_row(caps: Sequence[ClickCap]) -> list[dict[str, Any]]:
    return [{"period": c.period, "limit": format(c.limit, "f"), "per_partner": c.per_partner} for c in caps]


def _caps(stored: Any) -> tuple[ClickCap, ...]:
    return tuple(ClickCap(c["period"], Decimal(c["limit"]), c["per_partner"]) for c in stored or ())
