"""An offer's traffic controls (deep-link domains, landing pages, targeting) and a
relationship's targeting (narrowing the offer's for one partner): checked when set (a 4xx
naming the field), kept as given, and published whole on the offer's and the
relationship's events for tracking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from partners_fixtures import RunningPartners, assert_error, offer_body, partner_body, published_until

from afflux_contracts import Envelope, Event, OfferCreated, OfferUpdated, RelationshipSet
from afflux_partners.domain.destinations import check_deep_link_domains, check_landing_pages
from afflux_partners.domain.rules import RuleViolation
from afflux_partners.domain.targeting import check_targeting
from afflux_partners.domain.values import AllowDeny, DayParting, LandingPage, Targeting

SPRING = {"id": "spring", "name": "Spring page", "url": "https://shop.example/spring?tid={transaction_id}",
          "weight": 3}
AUTUMN = {"id": "autumn", "name": "Autumn page", "url": "https://shop.example/autumn", "weight": 1}
TARGETING = {
    "countries": {"allow": ["us", "CA"], "deny": []},
    "devices": {"allow": [], "deny": ["tablet"]},
    "operating_systems": {"allow": ["ios", "Android"], "deny": []},
    "browsers": {"allow": [], "deny": ["opera"]},
    "referrer_domains": {"allow": [], "deny": ["spam.example"]},
    "day_parting": {"time_zone": "America/New_York", "weekdays": [5, 1, 1], "hours": [9, 10]},
}
CANONICAL = {**TARGETING, "countries": {"allow": ["US", "CA"], "deny": []},
             "operating_systems": {"allow": ["ios", "android"], "deny": []},
             "day_parting": {"time_zone": "America/New_York", "weekdays": [1, 5], "hours": [9, 10]}}


def test_deep_link_domains_are_kept_lower_case_and_once() -> None:
    assert check_deep_link_domains(["Shop.Example", "blog.shop.example.", "shop.example"]) == (
        "shop.example", "blog.shop.example")


@pytest.mark.parametrize("domain", ["https://shop.example", "shop.example/path", "*.shop.example",
                                    "shop.example:443", "", "user@shop.example", "shop..example"])
def test_a_deep_link_domain_that_is_not_a_bare_host_name_is_refused_by_position(domain: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_deep_link_domains(["ok.example", domain])
    assert (refused.value.field, refused.value.code) == ("deep_link_domains.1", "invalid_domain")


@pytest.mark.parametrize(("page", "field", "code"), [
    (LandingPage("a b", "A", "https://shop.example/"), "landing_pages.0.id", "invalid_id"),
    (LandingPage("a", " ", "https://shop.example/"), "landing_pages.0.name", "invalid_name"),
    (LandingPage("a", "A", "javascript:alert(1)"), "landing_pages.0.url", "invalid_url"),
    (LandingPage("a", "A", "https://{sub1}.example/"), "landing_pages.0.url", "invalid_url"),
    (LandingPage("a", "A", "https://shop.example/", weight=-1), "landing_pages.0.weight", "invalid_weight"),
    (LandingPage("a", "A", "https://shop.example/", weight=1001), "landing_pages.0.weight",
     "invalid_weight"),
])
def test_a_bad_landing_page_is_refused_naming_its_field(page: LandingPage, field: str, code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_landing_pages([page])
    assert (refused.value.field, refused.value.code) == (field, code)


def test_two_landing_pages_with_one_id_are_refused() -> None:
    page = LandingPage("a", "A", "https://shop.example/")
    with pytest.raises(RuleViolation) as refused:
        check_landing_pages([page, page])
    assert refused.value.field == "landing_pages.1.id"


def test_targeting_is_kept_in_canonical_form() -> None:
    checked = check_targeting(Targeting(countries=AllowDeny(("fr", "FR", " de ")),
                                        devices=AllowDeny(deny=("Tablet",)),
                                        day_parting=DayParting("Europe/Paris", (7, 1), (23, 0, 23))))
    assert checked.countries == AllowDeny(("FR", "DE"))
    assert checked.devices == AllowDeny(deny=("tablet",))
    assert checked.day_parting == DayParting("Europe/Paris", (1, 7), (0, 23))


@pytest.mark.parametrize(("targeting", "field", "code"), [
    (Targeting(countries=AllowDeny(deny=("USA",))), "targeting.countries.deny.0", "invalid_country"),
    (Targeting(devices=AllowDeny(("phone",))), "targeting.devices.allow.0", "invalid_value"),
    (Targeting(operating_systems=AllowDeny(("ios", "symbian"))), "targeting.operating_systems.allow.1",
     "invalid_value"),
    (Targeting(browsers=AllowDeny(deny=("netscape",))), "targeting.browsers.deny.0", "invalid_value"),
    (Targeting(referrer_domains=AllowDeny(("https://news.example/",))), "targeting.referrer_domains.allow.0",
     "invalid_domain"),
    (Targeting(day_parting=DayParting("Mars/Olympus"),), "targeting.day_parting.time_zone",
     "invalid_time_zone"),
    (Targeting(day_parting=DayParting("America"),), "targeting.day_parting.time_zone", "invalid_time_zone"),
    (Targeting(day_parting=DayParting("x" * 300),), "targeting.day_parting.time_zone", "invalid_time_zone"),
    (Targeting(day_parting=DayParting("../etc/passwd"),), "targeting.day_parting.time_zone",
     "invalid_time_zone"),
    (Targeting(day_parting=DayParting(weekdays=(0,))), "targeting.day_parting.weekdays.0", "invalid_value"),
    (Targeting(day_parting=DayParting(hours=(12, 24))), "targeting.day_parting.hours.1", "invalid_value"),
])
def test_targeting_naming_what_no_visitor_can_have_is_refused_naming_the_field(
    targeting: Targeting, field: str, code: str,
) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_targeting(targeting)
    assert (refused.value.field, refused.value.code) == (field, code)


def about(offer_id: str, kind: type[Event]) -> Any:
    return lambda envelope: isinstance(envelope.payload, kind) and envelope.payload.offer_id == offer_id


async def test_an_offers_deep_link_domains_and_landing_pages_are_kept_and_published(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    created = await admin.post("/v1/offers", json=offer_body(deep_link_domains=["Shop.Example"],
                                                             landing_pages=[SPRING], targeting=TARGETING))
    assert created.status_code == 201, created.text
    offer = created.json()
    assert (offer["deep_link_domains"], offer["landing_pages"]) == (["shop.example"], [SPRING])
    assert offer["targeting"] == CANONICAL
    path = f"/v1/offers/{offer['offer_id']}"
    patched = await admin.patch(path, json={"landing_pages": [SPRING, {**AUTUMN, "weight": 0}]})
    assert patched.status_code == 200, patched.text
    assert (await admin.get(path)).json()["landing_pages"] == [SPRING, {**AUTUMN, "weight": 0}]
    assert (await admin.get(path)).json()["targeting"] == CANONICAL

    bootstrap = partners_service.settings.kafka_bootstrap_servers
    [created_record] = await published_until(bootstrap, about(offer["offer_id"], OfferCreated),
                                             lambda found: len(found) == 1)
    [updated_record] = await published_until(bootstrap, about(offer["offer_id"], OfferUpdated),
                                             lambda found: len(found) == 1)
    first: Envelope[Any] = created_record.envelope
    assert first.payload.deep_link_domains == ("shop.example",)
    assert [page.id for page in first.payload.landing_pages] == ["spring"]
    update = updated_record.envelope.payload
    assert update.changed == ("landing_pages",)
    assert [(page.id, page.weight) for page in update.landing_pages] == [("spring", 3), ("autumn", 0)]
    assert update.deep_link_domains == ("shop.example",)
    assert update.targeting is not None and update.targeting.model_dump(mode="json") == CANONICAL
    cleared = await admin.patch(path, json={"targeting": None})
    assert cleared.status_code == 200 and cleared.json()["targeting"] is None


@pytest.mark.parametrize(("overrides", "status", "code", "field"), [
    ({"deep_link_domains": ["https://evil.example/"]}, 422, "invalid_domain", "deep_link_domains.0"),
    ({"deep_link_domains": "shop.example"}, 422, "invalid_request", "deep_link_domains"),
    ({"landing_pages": [{**SPRING, "url": "//evil.example/"}]}, 422, "invalid_url", "landing_pages.0.url"),
    ({"landing_pages": [SPRING, SPRING]}, 422, "duplicate_landing_page", "landing_pages.1.id"),
    ({"landing_pages": [{**SPRING, "weight": "heavy"}]}, 422, "invalid_request", "landing_pages.0.weight"),
    ({"landing_pages": [{"id": "x", "url": "https://shop.example/"}]}, 422, "invalid_request",
     "landing_pages.0.name"),
    ({"targeting": {"countries": {"allow": ["Narnia"]}}}, 422, "invalid_country",
     "targeting.countries.allow.0"),
    ({"targeting": {"devices": {"allow": ["phone"]}}}, 422, "invalid_value", "targeting.devices.allow.0"),
    ({"targeting": {"day_parting": {"time_zone": "Nowhere/City"}}}, 422, "invalid_time_zone",
     "targeting.day_parting.time_zone"),
    ({"targeting": {"day_parting": {"hours": ["9"]}}}, 422, "invalid_request",
     "targeting.day_parting.hours.0"),
    ({"targeting": {"ages": {"allow": ["18"]}}}, 422, "invalid_request", "targeting.ages"),
])
async def test_bad_traffic_controls_are_a_4xx_naming_the_field(
    admin: httpx.AsyncClient, overrides: dict[str, Any], status: int, code: str, field: str,
) -> None:
    assert_error(await admin.post("/v1/offers", json=offer_body(**overrides)), status, code, field)
    created = await admin.post("/v1/offers", json=offer_body())
    assert_error(await admin.patch(f"/v1/offers/{created.json()['offer_id']}", json=overrides),
                 status, code, field)


async def relationship_path(admin: httpx.AsyncClient) -> str:
    offer = await admin.post("/v1/offers", json=offer_body(targeting={"countries": {"allow": ["US", "CA"]}}))
    partner = await admin.post("/v1/partners", json=partner_body())
    return f"/v1/offers/{offer.json()['offer_id']}/partners/{partner.json()['partner_id']}"


async def test_a_relationships_targeting_is_kept_in_canonical_form_and_published_for_tracking(
    admin: httpx.AsyncClient, partners_service: RunningPartners,
) -> None:
    path = await relationship_path(admin)
    offer_id, partner_id = path.split("/")[3], path.split("/")[5]

    narrowed = await admin.put(path, json={"approved": True, "targeting": TARGETING})
    read = await admin.get(path)
    cleared = await admin.put(path, json={"approved": True})

    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["targeting"] == read.json()["targeting"] == CANONICAL
    assert cleared.json()["targeting"] is None
    records = await published_until(
        partners_service.settings.kafka_bootstrap_servers,
        lambda e: isinstance(e.payload, RelationshipSet) and e.payload.offer_id == offer_id
        and e.payload.partner_id == partner_id, lambda found: len(found) == 2)
    first, second = (record.envelope.payload for record in records)
    assert first.targeting is not None and first.targeting.model_dump(mode="json") == CANONICAL
    assert second.targeting is None


@pytest.mark.parametrize(("targeting", "code", "field"), [
    ({"countries": {"allow": ["Narnia"]}}, "invalid_country", "targeting.countries.allow.0"),
    ({"browsers": {"deny": ["netscape"]}}, "invalid_value", "targeting.browsers.deny.0"),
    ({"day_parting": {"time_zone": "Nowhere/City"}}, "invalid_time_zone", "targeting.day_parting.time_zone"),
    ({"day_parting": {"weekdays": [8]}}, "invalid_value", "targeting.day_parting.weekdays.0"),
    ({"ages": {"allow": ["18"]}}, "invalid_request", "targeting.ages"),
])
async def test_a_relationships_targeting_is_checked_as_the_offers_is(
    admin: httpx.AsyncClient, targeting: dict[str, Any], code: str, field: str,
) -> None:
    path = await relationship_path(admin)
    assert_error(await admin.put(path, json={"approved": True, "targeting": targeting}), 422, code, field)
    assert_error(await admin.get(path), 404, "relationship_not_found")  # nothing was set
