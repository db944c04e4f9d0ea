"""A partner's terms on an offer in the console (the relationship page) over a real console
and a real partners service, as the creatives' pages are tested: the targeting that
narrows the offer's for that partner is saved through partners' PUT, read back on the page,
on the offer's partners list and from the partners API, cleared by an empty form, and a
value partners refuses comes back at its field with what was typed kept."""

from __future__ import annotations

import html
import re
import secrets
from typing import Any

import httpx
from partners_fixtures import ADMIN_TOKEN as PARTNERS_TOKEN
from partners_fixtures import RunningPartners, offer_body, partner_body
from test_console_creative_pages import (  # noqa: F401 (fixtures)
    console,
    creatives_broker,
    manager,
    partners,
)
from test_console_pages import csrf_of, nowhere  # noqa: F401 (a fixture)

PARTNERS_ADMIN = {"Authorization": f"Bearer {PARTNERS_TOKEN}"}


async def offer_and_partner(service: RunningPartners) -> tuple[str, str]:
    """An offer that refuses French visitors itself, and a partner to run it."""
    email = f"jackets-{secrets.token_hex(3)}@deals.example"
    async with service.client(headers=PARTNERS_ADMIN) as admin:
        offer = await admin.post("/v1/offers", json=offer_body(
            name="Rain jackets", targeting={"countries": {"deny": ["FR"]}}))
        partner = await admin.post("/v1/partners", json=partner_body(email=email))
    assert offer.status_code == 201 and partner.status_code == 201, (offer.text, partner.text)
    return str(offer.json()["offer_id"]), str(partner.json()["partner_id"])


async def save(browser: httpx.AsyncClient, path: str, **targeting: str) -> httpx.Response:
    """The relationship form as a browser posts it: approved, the targeting fields given."""
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    fields = {"csrf": csrf_of(page.text), "approved": "yes", "postback_method": "get"}
    return await browser.post(path, data={**fields, **{f"targeting.{k}": v for k, v in targeting.items()}})


async def stored(service: RunningPartners, offer_id: str, partner_id: str) -> Any:
    """The relationship's targeting as the partners API answers it."""
    async with service.client(headers=PARTNERS_ADMIN) as admin:
        found = await admin.get(f"/v1/offers/{offer_id}/partners/{partner_id}")
    assert found.status_code == 200, found.text
    return found.json()["targeting"]


def textarea(page: str, name: str) -> str:
    """What the page's textarea ``name`` holds, unescaped."""
    start = page.index(f'<textarea name="{name}"')
    return html.unescape(page[page.index(">", start) + 1 : page.index("</textarea>", start)])


async def test_a_managers_targeting_for_a_partner_is_saved_shown_and_cleared(
    partners: RunningPartners, manager: httpx.AsyncClient  # noqa: F811 (fixtures)
) -> None:
    offer_id, partner_id = await offer_and_partner(partners)
    path = f"/console/offers/{offer_id}/partners/{partner_id}"
    empty = await manager.get(path)
    assert "never widens it" in empty.text and "The offer's own: Countries not FR." in empty.text
    assert textarea(empty.text, "targeting.countries.allow") == ""

    saved = await save(manager, path, **{"countries.allow": "GB\nie", "devices.deny": "tablet"})
    assert saved.status_code == 303, saved.text
    assert await stored(partners, offer_id, partner_id) == {
        "countries": {"allow": ["GB", "IE"], "deny": []},
        "devices": {"allow": [], "deny": ["tablet"]},
        "operating_systems": {"allow": [], "deny": []},
        "browsers": {"allow": [], "deny": []},
        "referrer_domains": {"allow": [], "deny": []},
        "day_parting": None,
    }
    page = (await manager.get(path)).text
    assert textarea(page, "targeting.countries.allow") == "GB\nIE"
    assert textarea(page, "targeting.devices.deny") == "tablet"
    assert textarea(page, "targeting.devices.allow") == ""
    listed = (await manager.get(f"/console/offers/{offer_id}")).text
    assert "Countries GB, IE; Devices not tablet" in listed

    cleared = await save(manager, path)
    assert cleared.status_code == 303, cleared.text
    assert await stored(partners, offer_id, partner_id) is None
    assert textarea((await manager.get(path)).text, "targeting.countries.allow") == ""


async def test_a_country_code_partners_refuses_is_shown_at_its_field_with_what_was_typed(
    partners: RunningPartners, manager: httpx.AsyncClient  # noqa: F811 (fixtures)
) -> None:
    offer_id, partner_id = await offer_and_partner(partners)
    path = f"/console/offers/{offer_id}/partners/{partner_id}"

    refused = await save(manager, path, **{"countries.allow": "GB\nGBR", "devices.deny": "tablet"})
    assert refused.status_code == 422, refused.text
    assert 'aria-invalid="true" aria-describedby="targeting-countries-allow-error"' in refused.text
    at_field = refused.text.split('id="targeting-countries-allow-error">', 1)[1].split("</span>", 1)[0]
    assert "GBR" in html.unescape(at_field) and "country code" in at_field
    assert textarea(refused.text, "targeting.countries.allow") == "GB\nGBR"
    assert textarea(refused.text, "targeting.devices.deny") == "tablet"
    async with partners.client(headers=PARTNERS_ADMIN) as admin:
        nothing = await admin.get(f"/v1/offers/{offer_id}/partners/{partner_id}")
    assert nothing.status_code == 404, nothing.text


async def test_the_offer_form_sets_the_offers_own_targeting_with_the_same_fields(
    partners: RunningPartners, manager: httpx.AsyncClient  # noqa: F811 (fixtures)
) -> None:
    form = await manager.get("/console/offers/new")
    fields = {
        "csrf": csrf_of(form.text),
        "name": "Umbrellas",
        "destination_url": "https://shop.example/umbrellas?tid={transaction_id}",
        "currency": "EUR",
        "payout_type": "cpa",
        "payout_amount": "4.00",
        "targeting.countries.deny": "fr",
        "targeting.day_parting.time_zone": "Europe/Paris",
    }
    refused = await manager.post("/console/offers", data={**fields, "targeting.browsers.allow": "netscape"})
    assert refused.status_code == 422, refused.text
    assert 'aria-describedby="targeting-browsers-allow-error"' in refused.text
    assert textarea(refused.text, "targeting.browsers.allow") == "netscape"

    weekend = {"targeting.day_parting.weekdays": ["6", "7"]}
    made = await manager.post("/console/offers", data={**fields, **weekend})
    assert made.status_code == 201, made.text
    shown = re.search(r"<dt>Offer id</dt><dd><code>([0-9a-f]+)</code>", made.text)
    assert shown, made.text
    offer_id = shown.group(1)
    async with partners.client(headers=PARTNERS_ADMIN) as admin:
        offer = (await admin.get(f"/v1/offers/{offer_id}")).json()
    assert offer["targeting"]["countries"] == {"allow": [], "deny": ["FR"]}
    assert offer["targeting"]["day_parting"] == {"time_zone": "Europe/Paris", "weekdays": [6, 7], "hours": []}
    edit = (await manager.get(f"/console/offers/{offer_id}/edit")).text
    assert textarea(edit, "targeting.countries.deny") == "FR"
    assert 'name="targeting.day_parting.weekdays" value="6" checked' in edit
    assert 'name="targeting.day_parting.weekdays" value="5" checked' not in edit
