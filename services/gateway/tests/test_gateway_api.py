"""The gateway over a real broker and PostgreSQL: events published as the other services
publish them, then read back through ``/v1/me``, the admin report and the portal; the
partner's balance is the real payouts service's, asked with the gateway's own token."""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from gateway_fixtures import (
    ADMIN,
    DAY,
    PROFILE_KEY,
    SERVICE_TOKEN,
    TRACKING_URL,
    RunningGateway,
    RunningPayouts,
    attributed,
    click,
    key_issued,
    key_revoked,
    new_id,
    new_key,
    offer,
    partner,
    publish,
    rejected,
    relationship,
    wrap,
)
from payouts_fixtures import partner_created

from afflux_contracts import (
    ClickPriced,
    ConversionStatusChanged,
    ImpressionsPriced,
    Money,
    OfferStatus,
    OfferStatusChanged,
    PartnerPayoutProfileSet,
    PartnerPostbackDelivered,
    PaymentMethodKind,
    RoutedOffer,
    SmartLinkSet,
    StatementHeld,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatusChange,
    Visibility,
)
from afflux_contracts.attribution import Appeal, ConversionStatus, RejectionReason
from afflux_contracts.payouts import LineKind, StatementStatus, statement_digest
from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher
from afflux_plumbing.sealing import FernetSealer

WINDOW = {"from": "2026-03-01", "to": "2026-03-03"}


@dataclass
class Partner:
    partner_id: str
    api_key: str
    key_id: str
    offer_id: str
    private_offer_id: str
    conversion_id: str


@dataclass
class Scenario:
    a: Partner
    b: Partner
    approval_offer_id: str


async def seed_partner(log: Publisher, name: str, sub1: str) -> Partner:
    """A partner with a key and two private offers it is approved for (one at its own 7.00),
    3 clicks (2 unique, two with ``sub1``), 2 conversions of those two (approved and
    pending, 5.00 each, carrying their click's subs as attribution publishes them),
    a rejected one, a paid statement of 5.00 and a delivered postback."""
    partner_id, offer_id, private_id = new_id("p"), new_id("o"), new_id("o")
    api_key, key_id = new_key(), f"key_{new_id('k')}"
    tids = [new_id("t") for _ in range(3)]
    converted = new_id("conv")
    await publish(
        log,
        partner(partner_id, name),
        key_issued(partner_id, api_key, key_id),
        offer(offer_id, Visibility.PRIVATE, name=f"{name} offer"),
        relationship(offer_id, partner_id),
        offer(private_id, Visibility.PRIVATE, name=f"{name} private"),
        relationship(private_id, partner_id, payout="7.00"),
        click(tids[0], offer_id, partner_id, sub1=sub1),
        click(tids[1], offer_id, partner_id, sub1=sub1),
        click(tids[2], offer_id, partner_id, unique=False, at=DAY + timedelta(days=1)),
        attributed(tids[0], offer_id, partner_id, conversion_id=converted, sub1=sub1),
        attributed(tids[1], offer_id, partner_id, status=ConversionStatus.PENDING, sub1=sub1),
        rejected(tids[2], offer_id, partner_id, at=DAY + timedelta(days=1)),
    )
    line = StatementLine(
        kind=LineKind.COMMISSION, ref=converted, offer_id=offer_id, happened_at=DAY, amount=Decimal("5.00")
    )
    statement_id = new_id("st")
    period_end = DAY + timedelta(days=1)
    await publish(
        log,
        wrap(
            StatementIssued(
                statement_id=statement_id,
                partner_id=partner_id,
                currency="USD",
                period_end=period_end,
                status=StatementStatus.PAYABLE,
                lines=(line,),
                total=Decimal("5.00"),
                issued_at=period_end,
                digest=statement_digest(statement_id, partner_id, "USD", period_end, [line]),
            )
        ),
    )
    await publish(
        log,
        wrap(
            StatementPaid(
                statement_id=statement_id,
                partner_id=partner_id,
                currency="USD",
                amount=Decimal("5.00"),
                reference="=HYPERLINK(1)",
                paid_at=period_end,
            )
        ),
    )
    await publish(
        log,
        wrap(
            PartnerPostbackDelivered(
                delivery_id=new_id("d"),
                conversion_id=converted,
                partner_id=partner_id,
                offer_id=offer_id,
                url="https://tracker.example/pb?key=***",
                attempts=1,
                status_code=200,
                delivered_at=DAY,
            )
        ),
    )
    return Partner(partner_id, api_key, key_id, offer_id, private_id, converted)


@pytest.fixture(scope="module")
async def scenario(gateway: RunningGateway, log: Publisher) -> Scenario:
    a = await seed_partner(log, "Alpha", "mail")
    b = await seed_partner(log, "Beta", "social")
    approval_offer = new_id("o")
    await publish(log, offer(approval_offer, Visibility.REQUIRE_APPROVAL, name="Needs approval"))

    def settled() -> bool:
        for p in (a, b):
            body = gateway.get("/v1/me/statements", p.api_key).json()
            if not body.get("statements") or body["statements"][0]["status"] != "paid":
                return False
            if not gateway.get("/v1/me/postbacks", p.api_key).json().get("postbacks"):
                return False
            report = gateway.get("/v1/me/report", p.api_key, **WINDOW).json()
            if not report.get("totals") or report["totals"][0]["conversions"] != 2:
                return False
            if len(gateway.get("/v1/me/conversions", p.api_key).json().get("conversions", [])) != 3:
                return False
        return bool(
            gateway.get(f"/v1/me/offers/{approval_offer}/tracking-link", a.api_key).status_code == 403
        )

    await eventually(settled, timeout=60)
    return Scenario(a, b, approval_offer)


async def test_the_report_counts_what_the_log_says_per_day_and_per_sub(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    a = scenario.a
    by_day = (await gateway.aget("/v1/me/report", a.api_key, group_by="day", **WINDOW)).json()
    assert [
        (r["day"], r["clicks"], r["unique_clicks"], r["conversions"], r["payout"]) for r in by_day["rows"]
    ] == [("2026-03-02", 2, 2, 2, "10.00"), ("2026-03-03", 1, 0, 0, "0.00")]
    total = by_day["totals"][0]
    assert (total["clicks"], total["unique_clicks"], total["conversions"]) == (3, 2, 2)
    assert (total["cvr"], total["epc"], total["payout"], total["currency"]) == (
        "66.67",
        "3.3333",
        "10.00",
        "USD",
    )
    assert "revenue" not in total and "profit" not in total
    by_sub = (await gateway.aget("/v1/me/report", a.api_key, group_by="sub1", **WINDOW)).json()
    assert {r["sub1"]: (r["clicks"], r["conversions"]) for r in by_sub["rows"]} == {
        "mail": (2, 2),
        "": (1, 0),
    }


async def test_a_day_in_another_time_zone_starts_at_its_own_midnight(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    """The clicks at 00:00 UTC on March 2nd are on March 1st in New York."""
    body = (await gateway.aget("/v1/me/report", scenario.a.api_key, tz="America/New_York", **WINDOW)).json()
    assert [(r["day"], r["clicks"]) for r in body["rows"]] == [("2026-03-01", 2), ("2026-03-02", 1)]


async def test_bad_report_parameters_are_422_naming_the_field(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    key = scenario.a.api_key
    for params, field in [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "/etc/passwd"}, "tz"),
        ({"tz": "x" * 300}, "tz"),
        ({"from": "yesterday"}, "from"),
        ({"group_by": "partner"}, "group_by"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ]:
        response = await gateway.aget("/v1/me/report", key, **params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field


async def test_the_admin_report_adds_revenue_and_profit_and_needs_the_admin_token(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    url = f"{gateway.base_url}/v1/reports"
    async with gateway.client() as client:
        assert (await client.get(url, params=WINDOW)).status_code == 401
        assert (
            await client.get(url, params=WINDOW, headers={"X-Api-Key": scenario.a.api_key})
        ).status_code == 401
        body = (await client.get(url, params={**WINDOW, "group_by": "partner"}, headers=ADMIN)).json()
    rows = {r["partner"]: r for r in body["rows"]}
    for p in (scenario.a, scenario.b):
        row = rows[p.partner_id]
        assert (row["payout"], row["revenue"], row["profit"]) == ("10.00", "16.00", "6.00")
        assert Decimal(row["profit"]) == Decimal(row["revenue"]) - Decimal(row["payout"])


async def test_conversions_show_status_and_reason_and_page(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    key = scenario.a.api_key
    rows = (await gateway.aget("/v1/me/conversions", key)).json()["conversions"]
    assert sorted((r["status"], r["reason"]) for r in rows) == [
        ("approved", None),
        ("pending", None),
        ("rejected", "duplicate"),
    ]
    first = (await gateway.aget("/v1/me/conversions", key, limit=2)).json()
    second = (await gateway.aget("/v1/me/conversions", key, limit=2, after=first["next"])).json()
    assert len(first["conversions"]) == 2 and len(second["conversions"]) == 1 and second["next"] is None
    assert (await gateway.aget("/v1/me/conversions", key, after="not-a-cursor")).status_code == 422


async def test_statements_follow_the_payouts_log(gateway: RunningGateway, scenario: Scenario) -> None:
    key = scenario.a.api_key
    statements = (await gateway.aget("/v1/me/statements", key)).json()["statements"]
    assert [(s["total"], s["status"], s["lines"]) for s in statements] == [("5.00", "paid", 1)]
    csv = await gateway.aget("/v1/me/statements", key, format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("statement_id,currency,total,status")
    assert "'=HYPERLINK(1)" in lines[1], "a formula in a cell is neutralised"


async def test_the_balance_is_exactly_what_the_payouts_ledger_holds(
    gateway: RunningGateway, payouts: RunningPayouts, scenario: Scenario
) -> None:
    """No second fold in the gateway: its answer is payouts' own, cent for cent."""
    for p in (scenario.a, scenario.b):
        ledger = await eventually(
            lambda p=p: (
                payouts.balance(p.partner_id)
                if payouts.balance(p.partner_id)["balances"].get("USD", {}).get("pending") == "5.00"
                else None
            ),
            timeout=30,
        )
        shown = (await gateway.aget("/v1/me/balance", p.api_key)).json()
        assert shown == ledger, (shown, ledger)


async def test_the_gateway_token_may_read_balances_and_nothing_else_of_payouts(
    payouts: RunningPayouts, scenario: Scenario
) -> None:
    own = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with payouts.client(headers=own) as client:
        assert (await client.get(f"/v1/partners/{scenario.a.partner_id}/balance")).status_code == 200
        refused = await client.get(f"/v1/partners/{scenario.a.partner_id}/commissions")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_scope"
        assert (await client.post("/v1/statements/close", json={})).status_code == 403


async def fresh_partner(gateway: RunningGateway, log: Publisher, name: str) -> Partner:
    """A partner of the test's own (the scenario's figures stay as the other tests expect)."""
    partner_id, offer_id, api_key = new_id("p"), new_id("o"), new_key()
    await publish(
        log,
        partner(partner_id, name),
        key_issued(partner_id, api_key),
        offer(offer_id, Visibility.PRIVATE),
        relationship(offer_id, partner_id),
    )
    await eventually(lambda: gateway.get("/v1/me", api_key).status_code == 200)
    return Partner(partner_id, api_key, "", offer_id, "", "")


async def test_a_conversion_approved_on_appeal_shows_approved_counts_and_is_paid(
    gateway: RunningGateway, payouts: RunningPayouts, log: Publisher
) -> None:
    """A fraud false positive, rejected by a rule, then credited by staff: the gateway
    shows it approved, counts it, and shows the balance payouts holds for it."""
    a = await fresh_partner(gateway, log, "Appealed")
    tid, conversion_id = new_id("t"), new_id("conv")
    await publish(
        log,
        click(tid, a.offer_id, a.partner_id, sub1="appeal"),
        rejected(
            tid, a.offer_id, a.partner_id, conversion_id=conversion_id, reason=RejectionReason.FRAUD_TOO_FAST
        ),
        attributed(
            tid,
            a.offer_id,
            a.partner_id,
            conversion_id=conversion_id,
            payout="4.20",
            sub1="appeal",
            appeal=Appeal(
                rejected_reason=RejectionReason.FRAUD_TOO_FAST, by="admin", reason="a real customer"
            ),
        ),
    )

    def shown() -> dict[str, Any] | None:
        rows = gateway.get("/v1/me/conversions", a.api_key, limit=500).json()["conversions"]
        return next(
            (r for r in rows if r["conversion_id"] == conversion_id and r["status"] == "approved"), None
        )

    row = await eventually(shown)
    assert row is not None and (row["payout"], row["reason"], row["sub1"]) == ("4.20", None, "appeal")
    by_sub = (await gateway.aget("/v1/me/report", a.api_key, group_by="sub1", **WINDOW)).json()
    assert {r["sub1"]: (r["conversions"], r["payout"]) for r in by_sub["rows"]}["appeal"] == (1, "4.20")
    ledger = await eventually(
        lambda: (
            payouts.balance(a.partner_id)
            if payouts.balance(a.partner_id)["balances"]["USD"]["accrued"] == "4.20"
            else None
        ),
        timeout=30,
    )
    assert (await gateway.aget("/v1/me/balance", a.api_key)).json() == ledger


async def test_priced_clicks_and_impressions_are_shown_once_under_payouts_ids(
    gateway: RunningGateway, payouts: RunningPayouts, log: Publisher
) -> None:
    b = await fresh_partner(gateway, log, "Traffic")
    tid = new_id("t")
    priced = wrap(
        ClickPriced(
            transaction_id=tid,
            partner_id=b.partner_id,
            offer_id=b.offer_id,
            payout=Money(amount=Decimal("0.25"), currency="USD"),
            clicked_at=DAY,
            priced_at=DAY,
            sub1="cpc",  # the click's subs travel with its price: shown whichever topic is read first
        )
    )
    thousand = wrap(
        ImpressionsPriced(
            partner_id=b.partner_id,
            offer_id=b.offer_id,
            block=1,
            payout=Money(amount=Decimal("5.00"), currency="USD"),
            last_impression_id="imp-1000",
            last_impressed_at=DAY,
            priced_at=DAY,
        )
    )
    republished = wrap(priced.payload)
    await publish(log, click(tid, b.offer_id, b.partner_id, sub1="cpc"), priced, thousand, republished)

    def traffic() -> list[tuple[str, str, str, str | None]] | None:
        rows = gateway.get("/v1/me/conversions", b.api_key, limit=500).json()["conversions"]
        found = sorted(
            (r["kind"], r["conversion_id"], r["payout"], r["sub1"]) for r in rows if r["kind"] != "conversion"
        )
        return found if len(found) == 2 else None

    assert await eventually(traffic) == [
        ("cpc", f"click:{tid}", "0.25", "cpc"),
        ("cpm", f"cpm:{b.offer_id}:{b.partner_id}:1", "5.00", None),
    ]
    only_cpc = (await gateway.aget("/v1/me/conversions", b.api_key, kind="cpc")).json()["conversions"]
    assert [r["conversion_id"] for r in only_cpc] == [f"click:{tid}"]
    by_sub = (await gateway.aget("/v1/me/report", b.api_key, group_by="sub1", **WINDOW)).json()
    assert {r["sub1"]: r["payout"] for r in by_sub["rows"]} == {"cpc": "0.25", "": "5.00"}, "counted once"
    ledger = await eventually(
        lambda: (
            payouts.balance(b.partner_id)
            if payouts.balance(b.partner_id)["balances"].get("USD", {}).get("accrued") == "5.25"
            else None
        ),
        timeout=30,
    )
    assert (await gateway.aget("/v1/me/balance", b.api_key)).json() == ledger


async def test_a_review_moves_the_report_and_the_conversion(
    gateway: RunningGateway, log: Publisher, scenario: Scenario
) -> None:
    b = scenario.b
    await publish(
        log,
        wrap(
            ConversionStatusChanged(
                conversion_id=b.conversion_id,
                partner_id=b.partner_id,
                offer_id=b.offer_id,
                status=StatusChange.REVERSED,
                previous_status=ConversionStatus.APPROVED,
                payout=Money(amount=Decimal(0), currency="USD"),
                reason="refund",
                changed_at=DAY + timedelta(days=1),
            )
        ),
    )

    def reversed_() -> dict[str, Any] | None:
        total = gateway.get("/v1/me/report", b.api_key, **WINDOW).json()["totals"][0]
        return total if total["conversions"] == 1 else None

    total = await eventually(reversed_)
    assert total is not None and total["payout"] == "5.00"
    rows = (await gateway.aget("/v1/me/conversions", b.api_key)).json()["conversions"]
    assert ("reversed", "refund") in [(r["status"], r["reason"]) for r in rows]


async def test_reports_group_by_the_visitors_country_and_device_and_a_review_moves_them(
    gateway: RunningGateway, log: Publisher
) -> None:
    """Clicks counted by the country and device tracking read; a conversion in its click's
    (applied before it), a reversal taking it out of the same group."""
    partner_id, offer_id, api_key = new_id("p"), new_id("o"), new_key()
    tids = [new_id("t") for _ in range(4)]
    await publish(
        log, partner(partner_id, "Visitors"), key_issued(partner_id, api_key),
        offer(offer_id, Visibility.PRIVATE), relationship(offer_id, partner_id),
        click(tids[0], offer_id, partner_id, country="DE", device="mobile"),
        click(tids[1], offer_id, partner_id, country="DE", device="desktop"),
        click(tids[2], offer_id, partner_id, country="US", device="mobile", unique=False),
        click(tids[3], offer_id, partner_id),
    )

    def grouped(group_by: str, conversions: int) -> dict[str, tuple[int, int, str]] | None:
        body = gateway.get("/v1/me/report", api_key, group_by=group_by, **WINDOW).json()
        totals = body.get("totals") or [{}]
        if totals[0].get("clicks") != 4 or totals[0].get("conversions") != conversions:
            return None
        return {r[group_by]: (r["clicks"], r["conversions"], r["payout"]) for r in body["rows"]}

    await eventually(lambda: grouped("country", 0))
    converted = new_id("conv")
    await publish(log, attributed(tids[0], offer_id, partner_id, conversion_id=converted),
                  attributed(tids[2], offer_id, partner_id, payout="3.00"))
    assert await eventually(lambda: grouped("country", 2)) == {
        "": (1, 0, "0.00"), "DE": (2, 1, "5.00"), "US": (1, 1, "3.00")}
    by_device = await asyncio.to_thread(grouped, "device", 2)  # blocking: never on the gateway's loop
    assert by_device == {"": (1, 0, "0.00"), "desktop": (1, 0, "0.00"), "mobile": (2, 2, "8.00")}
    async with gateway.client() as client:
        admin = (await client.get("/v1/reports", headers=ADMIN, params={
            **WINDOW, "group_by": "country", "partner_id": partner_id})).json()
    assert {r["country"]: r["revenue"] for r in admin["rows"]} == {"": "0.00", "DE": "8.00", "US": "8.00"}

    await publish(log, wrap(ConversionStatusChanged(
        conversion_id=converted, partner_id=partner_id, offer_id=offer_id, status=StatusChange.REVERSED,
        previous_status=ConversionStatus.APPROVED, payout=Money(amount=Decimal(0), currency="USD"),
        reason="refund", changed_at=DAY + timedelta(days=1))))
    assert await eventually(lambda: grouped("country", 1)) == {
        "": (1, 0, "0.00"), "DE": (2, 0, "0.00"), "US": (1, 1, "3.00")}


async def test_offers_list_the_partners_own_terms_and_links_carry_the_subs(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    a = scenario.a
    offers = {o["offer_id"]: o for o in (await gateway.aget("/v1/me/offers", a.api_key)).json()["offers"]}
    assert offers[a.private_offer_id]["payout"] == {"type": "cpa", "amount": "7.00", "percent": None}
    assert offers[a.offer_id]["relationship"] == "approved"
    assert offers[scenario.approval_offer_id]["relationship"] == "none"
    assert scenario.b.private_offer_id not in offers
    link = await gateway.aget(
        f"/v1/me/offers/{a.offer_id}/tracking-link", a.api_key, sub1="spring mail", sub3="x&y"
    )
    assert link.json()["url"] == f"{TRACKING_URL}/c/{a.offer_id}/{a.partner_id}?sub1=spring+mail&sub3=x%26y"
    not_yet = await gateway.aget(f"/v1/me/offers/{scenario.approval_offer_id}/tracking-link", a.api_key)
    assert not_yet.status_code == 403 and not_yet.json()["error"]["code"] == "not_approved"


async def test_wrong_missing_and_revoked_keys_get_the_same_401(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    answers = [
        await gateway.aget("/v1/me", key)
        for key in (None, "", "afx_live_" + "x" * 43, "nonsense", "é".encode() * 5)
    ]
    for response in answers:
        assert response.status_code == 401, response.text
        assert response.json() == answers[0].json()


async def test_a_revoked_key_is_refused_once_the_revocation_is_applied(
    gateway: RunningGateway, log: Publisher, scenario: Scenario
) -> None:
    partner_id = scenario.a.partner_id
    api_key, key_id = new_key(), f"key_{new_id('k')}"
    await publish(log, key_issued(partner_id, api_key, key_id))
    await eventually(lambda: gateway.get("/v1/me", api_key).status_code == 200)
    assert (await gateway.aget("/v1/me", api_key)).json()["partner_id"] == partner_id
    await publish(log, key_revoked(partner_id, key_id))
    await eventually(lambda: gateway.get("/v1/me", api_key).status_code == 401, timeout=5)


def me_routes(p: Partner, other: Partner) -> list[tuple[str, dict[str, str]]]:
    """Every ``/v1/me`` GET with the other partner's ids in its path and query."""
    smuggled = {
        "partner_id": other.partner_id,
        "offer_id": other.offer_id,
        "conversion_id": other.conversion_id,
    }
    return [
        ("/v1/me", smuggled),
        ("/v1/me/offers", smuggled),
        ("/v1/me/report", {**smuggled, **WINDOW}),
        ("/v1/me/report", {**smuggled, **WINDOW, "group_by": "offer"}),
        ("/v1/me/conversions", smuggled),
        ("/v1/me/balance", smuggled),
        ("/v1/me/statements", smuggled),
        ("/v1/me/statements", {**smuggled, "format": "csv"}),
        ("/v1/me/postbacks", smuggled),
        (f"/v1/me/offers/{p.offer_id}/tracking-link", smuggled),
    ]


async def test_partner_a_never_reads_anything_of_partner_b(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    a, b = scenario.a, scenario.b
    foreign = {b.partner_id, b.offer_id, b.private_offer_id, b.conversion_id, b.key_id}
    for path, params in me_routes(a, b):
        response = await gateway.aget(path, a.api_key, **params)
        assert response.status_code == 200, (path, response.text)
        leaked = [value for value in foreign if value in response.text]
        assert not leaked, (path, leaked)
    for path in (
        f"/v1/me/offers/{b.private_offer_id}/tracking-link",
        f"/v1/me/offers/{b.offer_id}/tracking-link",
    ):
        response = await gateway.aget(path, a.api_key)
        assert response.status_code in (403, 404), (path, response.text)
        assert b.partner_id not in response.text
    async with gateway.client() as client:
        refused = await client.post(
            f"/v1/me/offers/{b.private_offer_id}/apply", headers={"X-Api-Key": a.api_key}
        )
    assert refused.status_code == 404, refused.text


async def signed_in(gateway: RunningGateway, api_key: str) -> httpx.AsyncClient:
    client: httpx.AsyncClient = gateway.client()
    page = await client.get("/portal/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    response = await client.post("/portal/signin", data={"csrf": csrf.group(1), "api_key": api_key})
    assert response.status_code == 303 and response.headers["location"] == "/portal/dashboard", response.text
    return client


async def test_the_portal_session_cookie_is_httponly_strict_and_pages_load_nothing_from_outside(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    client = gateway.client()
    page = await client.get("/portal/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = await client.post("/portal/signin", data={"csrf": csrf.group(1), "api_key": scenario.a.api_key})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert scenario.a.api_key not in cookie
    dashboard = await client.get("/portal/dashboard", params=WINDOW)
    assert dashboard.status_code == 200
    assert "default-src 'none'" in dashboard.headers["content-security-policy"]
    assert not re.search(r'(src|href)="(https?:)?//', dashboard.text), "nothing is loaded from another host"
    assert "<svg" in dashboard.text and 'id="total-clicks">3<' in dashboard.text


async def test_a_portal_form_without_its_csrf_token_is_refused(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    client = gateway.client()
    assert (await client.post("/portal/signin", data={"api_key": scenario.a.api_key})).status_code == 403
    signed = await signed_in(gateway, scenario.a.api_key)
    assert (await signed.post("/portal/signout", data={"csrf": "forged"})).status_code == 403
    assert (await signed.get("/portal/dashboard")).status_code == 200, "the forged sign-out did nothing"


async def test_partner_a_portal_pages_never_show_partner_b(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    a, b = scenario.a, scenario.b
    client = await signed_in(gateway, a.api_key)
    foreign = {b.partner_id, b.offer_id, b.private_offer_id, b.conversion_id}
    pages = [
        "/portal/dashboard",
        "/portal/offers",
        "/portal/conversions",
        "/portal/balance",
        "/portal/statements.csv",
        f"/portal/offers/{a.offer_id}/link",
    ]
    for path in pages:
        response = await client.get(
            path, params={"partner_id": b.partner_id, "offer_id": b.offer_id, **WINDOW}
        )
        assert response.status_code == 200, (path, response.text)
        assert not [value for value in foreign if value in response.text], path
    for path in (f"/portal/offers/{b.private_offer_id}/link", f"/portal/offers/{b.offer_id}/link"):
        response = await client.get(path)
        assert response.status_code == 404 and b.partner_id not in response.text, path
    page = await client.get("/portal/offers")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    applied = await client.post(f"/portal/offers/{b.private_offer_id}/apply", data={"csrf": csrf.group(1)})
    assert applied.status_code == 404 and b.partner_id not in applied.text


async def test_the_portal_balance_shows_each_invoice_with_its_pdf_and_a_held_statement_s_reason(
    gateway: RunningGateway, payouts: RunningPayouts, scenario: Scenario, log: Publisher
) -> None:
    """Payouts closes and invoices a statement of a partner whose profile is complete: the
    balance page shows its number and the PDF downloads through the portal's session (another
    partner's statement is a 404 page, never its invoice); a held statement says why."""
    partner_id, offer_id, api_key = new_id("p"), new_id("o"), new_key()
    sealed = FernetSealer(PROFILE_KEY).seal({
        "tax": {"legal_name": "Gamma Ltd", "country": "DE", "tax_form": "none_needed",
                "address": {"line1": "Hauptstr. 1", "city": "Köln"}},
        "payment_method": {"type": "paypal", "email": "gamma@x.example"}})
    held_id = new_id("st")
    line = StatementLine(kind=LineKind.COMMISSION, ref=new_id("conv"), offer_id=offer_id, happened_at=DAY,
                         amount=Decimal("2.00"))
    period_end = DAY + timedelta(days=2)
    await publish(
        log, partner_created(partner_id), key_issued(partner_id, api_key),
        offer(offer_id, Visibility.PRIVATE), relationship(offer_id, partner_id),
        attributed(new_id("t"), offer_id, partner_id),
        wrap(PartnerPayoutProfileSet(partner_id=partner_id, country="DE", complete=True, sealed=sealed,
                                     payment_method=PaymentMethodKind.PAYPAL, set_at=DAY)),
        wrap(StatementIssued(
            statement_id=held_id, partner_id=partner_id, currency="USD", period_end=period_end,
            status=StatementStatus.PAYABLE, lines=(line,), total=Decimal("2.00"), issued_at=period_end,
            digest=statement_digest(held_id, partner_id, "USD", period_end, [line]))),
        wrap(StatementHeld(statement_id=held_id, partner_id=partner_id, currency="USD",
                           reason="missing_rate EUR/USD 2026-03-03", held_at=period_end)))
    await eventually(lambda: payouts.balance(partner_id)["balances"].get("USD", {}).get("accrued") == "5.00",
                     timeout=30)
    async with payouts.client(timeout=30) as admin:
        closed = await admin.post("/v1/statements/close", json={"period_end": period_end.isoformat(),
                                                                "partner_id": partner_id})
    assert closed.status_code == 200 and closed.json()["statements"], closed.text
    await eventually(lambda: gateway.get("/v1/me", api_key).status_code == 200)
    client = await signed_in(gateway, api_key)
    for _ in range(150):  # the gateway reads the statement, payouts invoices it (every 0.2 s)
        page = (await client.get("/portal/balance")).text
        if "invoice.pdf" in page and "missing_rate EUR/USD" in page:
            break
        await asyncio.sleep(0.2)
    assert "on hold: <span class=\"hold-reason\">missing_rate EUR/USD 2026-03-03</span>" in page
    link = re.search(r'<td class="invoice">(\S+) <a href="(/portal/statements/[^"]+/invoice\.pdf)"', page)
    assert link is not None and link.group(1).startswith("AFX-"), page
    pdf = await client.get(link.group(2))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    others = (await gateway.aget("/v1/me/statements", scenario.a.api_key)).json()["statements"]
    foreign = await client.get(f"/portal/statements/{others[0]['statement_id']}/invoice.pdf")
    assert foreign.status_code == 404 and "%PDF" not in foreign.text and 'id="notice"' in foreign.text
    held = await client.get(f"/portal/statements/{held_id}/invoice.pdf")
    assert held.status_code == 404 and "no invoice yet" in held.text


async def test_revoking_the_key_ends_its_portal_sessions(
    gateway: RunningGateway, log: Publisher, scenario: Scenario
) -> None:
    api_key, key_id = new_key(), f"key_{new_id('k')}"
    await publish(log, key_issued(scenario.b.partner_id, api_key, key_id))
    await eventually(lambda: gateway.get("/v1/me", api_key).status_code == 200)
    client = await signed_in(gateway, api_key)
    await publish(log, key_revoked(scenario.b.partner_id, key_id))
    for _ in range(50):
        answer = await client.get("/portal/dashboard")
        if answer.status_code == 303:
            break
        await asyncio.sleep(0.1)
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/signin"


async def test_failures_are_slowed_down_per_source_and_a_valid_key_always_gets_through(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    """Lowers the limit to 5 for its own guesses. Behind a load balancer everyone shares
    an address: others' bad keys must not lock a partner out."""
    guard = gateway.app.state.guard
    limit, guard.throttle.limit = guard.throttle.limit, 5
    guess = "afx_live_guess" + new_id("g")
    try:
        for _ in range(guard.throttle.limit):
            assert (await gateway.aget("/v1/me", guess)).status_code == 401
        refused = await gateway.aget("/v1/me", guess)
        assert refused.status_code == 429, "the guesser's source waits"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"]["code"] == "too_many_failures"
        assert (await gateway.aget("/v1/me", scenario.a.api_key)).status_code == 200, (
            "a valid key gets through"
        )
        typo = scenario.b.api_key[:-1] + ("x" if scenario.b.api_key[-1] != "x" else "y")
        assert (await gateway.aget("/v1/me", typo)).status_code == 401, (
            "another partner's typo is its own 401"
        )
    finally:
        guard.throttle.limit = limit


async def test_signing_out_ends_the_session_on_the_server(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    """A copy of the cookie taken before sign-out is refused after it."""
    client = await signed_in(gateway, scenario.a.api_key)
    cookie = client.cookies.get("afflux_session")
    assert cookie and (await client.get("/portal/dashboard")).status_code == 200
    page = await client.get("/portal/offers")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    assert (await client.post("/portal/signout", data={"csrf": csrf.group(1)})).status_code == 303
    async with gateway.client(cookies={"afflux_session": cookie}) as replayed:
        answer = await replayed.get("/portal/dashboard")
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/signin"


async def test_a_deeply_nested_cursor_is_a_422_not_a_500(gateway: RunningGateway, scenario: Scenario) -> None:
    nested = base64.urlsafe_b64encode(("[" * 2000 + "]" * 2000).encode()).decode()
    for cursor in (
        nested,
        nested[:400],
        base64.urlsafe_b64encode(b'["2026-03-02T00:00:00+00:00", "c"]').decode(),
    ):
        response = await gateway.aget("/v1/me/conversions", scenario.a.api_key, after=cursor)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "after"


async def test_bad_input_on_every_partner_route_is_a_4xx_in_the_shared_shape(
    gateway: RunningGateway, scenario: Scenario
) -> None:
    a = scenario.a
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/v1/me/conversions", {"limit": 0}, 422),
        ("/v1/me/conversions", {"limit": 100000}, 422),
        ("/v1/me/conversions", {"after": "eyJ4IjogMX0"}, 422),
        ("/v1/me/statements", {"format": "xml"}, 422),
        ("/v1/me/postbacks", {"limit": -1}, 422),
        (f"/v1/me/offers/{a.offer_id}/tracking-link", {"sub1": "x" * 501}, 422),
        ("/v1/me/offers/caf\u00e9-\u2603/tracking-link", {}, 404),
        ("/v1/me/report", {"group_by": "sub9"}, 422),
        ("/v1/me/report", {"from": "2026-02-30"}, 422),
    ]
    for path, params, status in cases:
        response = await gateway.aget(path, a.api_key, **params)
        assert response.status_code == status, (path, params, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "field"} and error["message"], (path, error)


def smart_link(smart_link_id: str, name: str, *offers: RoutedOffer) -> Any:
    return wrap(SmartLinkSet(smart_link_id=smart_link_id, name=name, offers=offers))


async def test_a_partner_sees_the_smart_links_holding_offers_it_may_run_and_only_those_offers(
    gateway: RunningGateway, log: Publisher
) -> None:
    """A link is shown when it holds an offer the partner may run (active; public unless
    refused, else approved) and lists only those, by priority; one holding only a private
    offer the partner is not approved on is not shown, to it, while the partner approved on
    that offer sees it; a new state of a link replaces the old one."""
    a = await fresh_partner(gateway, log, "Smart A")
    approved_elsewhere = await fresh_partner(gateway, log, "B")
    public, refused, gated, private, paused = (new_id("o") for _ in range(5))
    mix, secret = new_id("s"), new_id("s")
    listed = [RoutedOffer(offer_id=o) for o in (a.offer_id, refused, gated, paused, "o-unknown")]
    await publish(
        log,
        offer(public, Visibility.PUBLIC, amount="2.00", name="Public"),
        offer(refused, Visibility.PUBLIC), relationship(refused, a.partner_id, approved=False),
        offer(gated, Visibility.REQUIRE_APPROVAL),
        offer(private, Visibility.PRIVATE, name="Secret"),
        relationship(private, approved_elsewhere.partner_id),
        offer(paused, Visibility.PUBLIC),
        wrap(OfferStatusChanged(offer_id=paused, status=OfferStatus.PAUSED)),
        smart_link(mix, "Mix", RoutedOffer(offer_id=private), RoutedOffer(offer_id=public, priority=2),
                   *listed),
        smart_link(secret, "Secret only", RoutedOffer(offer_id=private)),
    )

    def shown(partner: Partner, offers: list[int], **subs: str) -> list[dict[str, Any]] | None:
        """The partner's links once they hold ``offers`` offers each (the views caught up)."""
        links: list[dict[str, Any]] = gateway.get("/v1/me/smart-links", partner.api_key, **subs).json()[
            "smart_links"]
        return links if [len(link["offers"]) for link in links] == offers else None

    others = await eventually(lambda: shown(approved_elsewhere, [3, 1]))  # "refused" refuses A only
    links = await eventually(lambda: shown(a, [2], sub1="spring mail"))
    assert others is not None and links is not None
    assert [link["smart_link_id"] for link in others] == [mix, secret]  # by name
    [only] = links
    assert (only["smart_link_id"], only["name"]) == (mix, "Mix")
    assert only["url"] == f"{TRACKING_URL}/s/{mix}/{a.partner_id}?sub1=spring+mail"
    assert [(o["offer_id"], o["payout"]["amount"]) for o in only["offers"]] == [
        (a.offer_id, "5.00"), (public, "2.00")]  # priority 1 before 2
    assert "Secret" not in str(links)

    await publish(log, smart_link(secret, "Zero weight", RoutedOffer(offer_id=private),
                                  RoutedOffer(offer_id=public, weight=0)),
                  smart_link(mix, "Mix", RoutedOffer(offer_id=public)))

    def renamed() -> list[dict[str, Any]] | None:
        links = shown(approved_elsewhere, [1, 1])
        return links if links and [link["name"] for link in links] == ["Mix", "Zero weight"] else None

    both = await eventually(renamed)  # both new states applied
    assert both is not None and [o["offer_id"] for o in both[1]["offers"]] == [private]
    assert await eventually(lambda: shown(a, [1])) == [{  # weight 0: never drawn, so "Zero weight" is not A's
        "smart_link_id": mix, "name": "Mix", "url": f"{TRACKING_URL}/s/{mix}/{a.partner_id}",
        "offers": [{"offer_id": public, "name": "Public", "currency": "USD",
                    "payout": {"type": "cpa", "amount": "2.00", "percent": None}}]}]
    assert (await gateway.aget("/v1/me/smart-links")).status_code == 401
