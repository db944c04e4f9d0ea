"""The partner's view over the real processes, through the public HTTP contract only: an
admin issues the partner a key, the partner applies for an offer through the gateway and
is approved, takes its link from the gateway, drives clicks and conversions through
tracking, and the gateway's report says exactly what was sent; the admin report's
profit is revenue - payout. With the tax gate on, a partner's statement is held until the
partner records a complete tax and payment profile through the gateway; a SEPA payment run
then has a pain.001 file that validates against its schema and, confirmed twice, pays once;
the statement's self-billed invoice PDF shows its number, totals and VAT treatment.
Staff make a banner through the partners API; the partner takes it from the gateway with
its own link in the code, the image from the gateway's public route, and its click counts."""

from __future__ import annotations

import base64
import html
import io
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sepaxml
import xmlschema
from afflux_api import AdminApi, replay_verifies, wait_for
from PIL import Image
from pypdf import PdfReader

from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure

pytestmark = pytest.mark.slow

BROWSERS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
)


@pytest.fixture(scope="module")
def platform(
    infra: SessionInfrastructure, bootstrap_for_platform: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """Every service as its own process; the gateway is told where the partners API is."""
    ports = {name: free_port() for name in DEFAULT_PORTS}
    running = Platform(
        Infrastructure(
            database_url=infra.new_database(),
            bootstrap_servers=bootstrap_for_platform,
            kind=infra.server.kind,
        ),
        ports=ports,
        log_dir=tmp_path_factory.mktemp("platform-logs"),
        extra_env={
            "AFFLUX_CONSUMER_GROUP_PREFIX": f"e2e-{secrets.token_hex(4)}",
            "AFFLUX_PARTNERS_URL": f"http://127.0.0.1:{ports['partners']}",
            # The tax gate (issue 23): no statement here is paid without a complete profile.
            "AFFLUX_PAYOUTS_TAX_GATE": "true",
            "AFFLUX_PAYOUTS_HOLD_INTERVAL": "0.5",
            # The network's account its SEPA payment runs debit.
            "AFFLUX_PAYOUTS_SEPA_NAME": "Afflux Network GmbH",
            "AFFLUX_PAYOUTS_SEPA_IBAN": "DE02120300000000202051",
            "AFFLUX_PAYOUTS_SEPA_BIC": "BYLADEM1001",
            # The network as it issues self-billed invoices.
            "AFFLUX_INVOICE_ISSUER_NAME": "Afflux Network SAS",
            "AFFLUX_INVOICE_ISSUER_COUNTRY": "FR",
            "AFFLUX_INVOICE_ISSUER_VAT_ID": "FR40303265045",
        },
    )
    try:
        yield running.start()
    finally:
        running.stop()


def as_partner(platform: Platform, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=platform.url("gateway"), headers={"X-Api-Key": api_key}, timeout=10)


def click(link: str, user_agent: str, sub1: str) -> str:
    """A visitor following ``link`` (the gateway's, with its subs): the transaction_id."""

    def redirected() -> str | None:
        response = httpx.get(link, headers={"User-Agent": user_agent}, follow_redirects=False)
        location = response.headers.get("location", "")
        if response.status_code == 302 and location.startswith("https://shop.example/"):
            query = parse_qs(urlsplit(location).query)
            assert query["s1"] == [sub1]
            return query["tid"][0]
        return None

    return str(wait_for(redirected, timeout=30))


def report(gateway: httpx.Client, **params: str) -> dict[str, Any]:
    response = gateway.get("/v1/me/report", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_partner_gets_its_key_its_link_and_a_report_equal_to_what_was_sent(platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Gatewayed")
    key = api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})
    assert key["api_key"].startswith("afx_live_")
    offer = api.post(
        "partners",
        "/v1/offers",
        {
            "name": "Spring sale",
            "currency": "USD",
            "visibility": "require_approval",
            "destination_url": "https://shop.example/landing?tid={transaction_id}&s1={sub1}",
            "payout": {"type": "cps", "percent": "8"},
            "revenue": {"type": "cps", "percent": "12"},
        },
    )
    offer_id, token = offer["offer_id"], offer["postback_token"]

    with as_partner(platform, key["api_key"]) as gateway:
        wait_for(lambda: gateway.get("/v1/me").status_code == 200)
        listed = wait_for(
            lambda: [o for o in gateway.get("/v1/me/offers").json()["offers"] if o["offer_id"] == offer_id]
        )
        assert listed[0]["relationship"] == "none"
        applied = gateway.post(f"/v1/me/offers/{offer_id}/apply")
        assert applied.status_code == 201 and applied.json()["relationship"] == "pending", applied.text
        assert gateway.get(f"/v1/me/offers/{offer_id}/tracking-link").status_code == 403
        api.approve(offer_id, partner_id)
        link = wait_for(
            lambda: (
                gateway.get(f"/v1/me/offers/{offer_id}/tracking-link", params={"sub1": "newsletter"})
                .json()
                .get("url")
            )
        )

        # Three clicks (one visitor twice: two unique), two sales of 120.00 and 50.00.
        transactions = [
            click(link, BROWSERS[0], "newsletter"),
            click(link, BROWSERS[0], "newsletter"),
            click(link, BROWSERS[1], "newsletter"),
        ]
        for transaction_id, amount in zip(transactions[1:], ("120.00", "50.00"), strict=True):
            response = httpx.get(
                f"{platform.url('tracking')}/postback",
                params={
                    "transaction_id": transaction_id,
                    "amount": amount,
                    "currency": "USD",
                    "order_id": f"order-{secrets.token_hex(4)}",
                    "token": token,
                },
            )
            assert response.status_code == 200, response.text

        def sent() -> dict[str, Any] | None:
            totals = report(gateway)["totals"]
            return totals[0] if totals and totals[0]["conversions"] == 2 else None

        total = wait_for(sent, timeout=60)
        assert (total["clicks"], total["unique_clicks"], total["conversions"]) == (3, 2, 2)
        # 8% of 170.00 = 13.60; CVR 2/3 = 66.67%; EPC 13.60 / 3 = 4.5333
        figures = (total["payout"], total["cvr"], total["epc"], total["currency"])
        assert figures == ("13.60", "66.67", "4.5333", "USD")
        by_sub = report(gateway, group_by="sub1")["rows"]
        assert [(r["sub1"], r["clicks"], r["conversions"]) for r in by_sub] == [("newsletter", 3, 2)]
        conversions = gateway.get("/v1/me/conversions").json()["conversions"]
        assert sorted(c["payout"] for c in conversions) == ["4.00", "9.60"]
        assert {c["status"] for c in conversions} == {"approved"}
        balance = wait_for(lambda: gateway.get("/v1/me/balance").json()["balances"].get("USD"))
        assert balance["accrued"] == "13.60"
        assert Decimal(balance["accrued"]) == api.accrued(partner_id), "the gateway agrees with the ledger"

    admin = api.get("gateway", f"/v1/reports?group_by=partner&partner_id={partner_id}").json()
    row = admin["rows"][0]
    assert (row["partner"], row["payout"], row["revenue"]) == (partner_id, "13.60", "20.40")
    assert Decimal(row["profit"]) == Decimal(row["revenue"]) - Decimal(row["payout"]) == Decimal("6.80")

    revoked = httpx.delete(
        f"{platform.url('partners')}/v1/partners/{partner_id}/api-keys/{key['key_id']}",
        headers={"Authorization": f"Bearer {platform.admin_token}"},
    )
    assert revoked.status_code == 200, revoked.text
    with as_partner(platform, key["api_key"]) as gateway:
        wait_for(lambda: gateway.get("/v1/me").status_code == 401, timeout=10)


def test_a_partner_applies_for_an_offer_from_the_portal(platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner("Portaled")
    api_key = api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})["api_key"]
    offer_id = api.post(
        "partners",
        "/v1/offers",
        {
            "name": "Needs approval",
            "currency": "USD",
            "visibility": "require_approval",
            "destination_url": "https://shop.example/?tid={transaction_id}",
            "payout": {"type": "cpa", "amount": "3"},
        },
    )["offer_id"]
    with httpx.Client(base_url=platform.url("gateway"), timeout=10) as portal:
        wait_for(lambda: offer_id in portal.get("/v1/me/offers", headers={"X-Api-Key": api_key}).text)
        signin = portal.get("/portal/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf is not None
        assert (
            portal.post("/portal/signin", data={"csrf": csrf.group(1), "api_key": api_key}).status_code == 303
        )
        offers = portal.get("/portal/offers")
        token = re.search(r'name="csrf" value="([^"]+)"', offers.text)
        assert token is not None and f"/portal/offers/{offer_id}/apply" in offers.text
        applied = portal.post(f"/portal/offers/{offer_id}/apply", data={"csrf": token.group(1)})
        assert applied.status_code == 200 and "Application sent" in applied.text, applied.text
    relationship = api.get("partners", f"/v1/offers/{offer_id}/partners/{partner_id}").json()
    assert (relationship["approved"], relationship["application"]) == (False, True)


def test_a_statement_is_held_until_the_partner_completes_its_tax_profile_and_a_sepa_run_pays_it_once(
        platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = str(api.post("partners", "/v1/partners", {
        "name": f"Taxed{secrets.token_hex(3)}", "email": f"tax-{secrets.token_hex(3)}@partners.example",
        "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "0"}})["partner_id"])
    api_key = api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})["api_key"]
    offer_id = api.create_cps_offer(percent="10", currency="EUR")
    api.approve(offer_id, partner_id)
    api.sale(offer_id, partner_id, "250.00", "EUR", "tax-order-1")
    wait_for(lambda: api.balance(partner_id, "EUR").get("accrued") == Decimal("25.00"), timeout=30)

    closed = api.post("payouts", "/v1/statements/close",
                      {"period_end": datetime.now(UTC).isoformat(), "partner_id": partner_id})
    statement_id = closed["statements"][0]["statement_id"]
    held = api.get("payouts", f"/v1/statements/{statement_id}").json()
    assert (held["status"], held["hold_reason"]) == \
        ("on_hold", "the partner has no tax and payment profile yet")
    with api._client("payouts") as payouts:
        assert payouts.post(f"/v1/statements/{statement_id}/paid", json={}).status_code == 409

    with as_partner(platform, api_key) as gateway:
        def mine() -> dict[str, Any] | None:
            listed = gateway.get("/v1/me/statements").json()["statements"]
            return next((s for s in listed if s["statement_id"] == statement_id), None)

        seen = wait_for(lambda: (found := mine()) is not None and found["status"] == "on_hold" and found,
                        timeout=30)
        assert seen["hold_reason"] == "the partner has no tax and payment profile yet"  # why, to the partner
        tax = gateway.put("/v1/me/tax-profile", json={
            "legal_name": "Taxed GmbH", "country": "DE", "vat_id": "DE136695976", "tax_form": "w8ben_e",
            "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115"}})
        assert tax.status_code == 200, tax.text
        assert (tax.json()["complete"], tax.json()["missing"]) == (False, ["payment_method"])
        bad = gateway.put("/v1/me/payment-method", json={"type": "sepa", "account_holder": "Taxed GmbH",
                                                          "iban": "DE89370400440532013001"})
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "iban")
        good = gateway.put("/v1/me/payment-method", json={"type": "sepa", "account_holder": "Taxed GmbH",
                                                           "iban": "DE89370400440532013000"})
        assert good.status_code == 200 and good.json()["complete"] is True, good.text
        assert "DE8937" not in good.text  # the partner's answer shows completeness, not numbers

    wait_for(lambda: api.get("payouts", f"/v1/statements/{statement_id}").json()["status"] == "payable",
             timeout=30)
    invoice = wait_for(lambda: (found := api.get("payouts", f"/v1/statements/{statement_id}/invoice"))
                       .status_code == 200 and found, timeout=30)
    with as_partner(platform, api_key) as gateway:  # the partner's own copy, through the gateway
        pdf = gateway.get(f"/v1/me/statements/{statement_id}/invoice.pdf")
        assert gateway.get("/v1/me/statements/st_not_mine/invoice").status_code == 404
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf", pdf.text
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    number = invoice.json()["invoice_number"]
    for shown in (f"Self-billed invoice {number}", "Total: 25.00 EUR", "VAT: 0.00 EUR", "Reverse charge"):
        assert shown in text, text
    run = api.post("payouts", "/v1/payment-runs", {"method": "sepa", "statement_ids": [statement_id]})
    with api._client("payouts") as payouts:
        sepa = payouts.get(f"/v1/payment-runs/{run['payment_run_id']}/file")
    assert sepa.status_code == 200, sepa.text
    pain_001 = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
    xmlschema.XMLSchema(str(pain_001)).validate(sepa.text)
    assert "DE89370400440532013000" in sepa.text and '<InstdAmt Ccy="EUR">25.00</InstdAmt>' in sepa.text
    confirm = f"/v1/payment-runs/{run['payment_run_id']}/confirm"
    assert api.post("payouts", confirm, {}) == api.post("payouts", confirm, {})  # twice: paid once
    wait_for(lambda: api.balance(partner_id, "EUR")["paid"] == Decimal("25.00"), timeout=30)
    with api._client("payouts") as payouts:
        assert payouts.post(f"/v1/statements/{statement_id}/paid", json={}).status_code == 409
    replay_verifies(platform)


def test_staff_make_a_banner_the_partner_pastes_it_with_its_own_link_and_its_click_is_recorded(
        platform: Platform) -> None:
    api = AdminApi(platform)
    partner_id = api.create_partner(f"Bannered{secrets.token_hex(3)}")
    api_key = api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})["api_key"]
    offer_id = api.post("partners", "/v1/offers", {
        "name": "Banner sale", "currency": "USD", "visibility": "private",
        "destination_url": "https://shop.example/landing?tid={transaction_id}&s1={sub1}",
        "payout": {"type": "cpa", "amount": "2"}})["offer_id"]
    api.approve(offer_id, partner_id)
    picture = io.BytesIO()
    Image.new("RGB", (300, 250), "navy").save(picture, "PNG")
    image = picture.getvalue()
    created = api.post("partners", f"/v1/offers/{offer_id}/creatives", {
        "kind": "banner", "name": "Medium rectangle", "image_base64": base64.b64encode(image).decode(),
        "filename": "rectangle.png", "alt_text": "Banner sale"})

    with as_partner(platform, api_key) as gateway:
        banners = wait_for(lambda: gateway.get(f"/v1/me/offers/{offer_id}/creatives",
                                               params={"sub1": "banner"}).json().get("creatives"))
        [banner] = banners
        link = banner["tracking_link"]
        assert banner["creative_id"] == created["creative_id"]
        assert link == f"{platform.url('tracking')}/c/{offer_id}/{partner_id}?sub1=banner"
        assert banner["html"].startswith(f'<a href="{html.escape(link)}"><img src="{banner["image_url"]}"')
        served = httpx.get(banner["image_url"])
        assert (served.status_code, served.headers["content-type"]) == (200, "image/png")
        assert served.content == image

        click(link, BROWSERS[0], "banner")

        def recorded() -> dict[str, Any] | None:
            totals = report(gateway)["totals"]
            return totals[0] if totals and totals[0]["clicks"] == 1 else None

        assert wait_for(recorded, timeout=60)["clicks"] == 1
