"""The console in a real browser (Debian's Chromium through Selenium) over the whole
platform: a first program run by its people, each signed in as themselves.

The bootstrap owner signs in with the link ``make run`` prints and creates a manager, a
finance user and an analyst. The manager creates an offer (its event needs approval),
approves a partner's application to run it and, once the partner's sales are held for
review, approves them all at once. Finance closes the period and marks the statement
paid. The analyst sees all of it and can change none of it: no button is offered, and a
form forged in the analyst's browser is refused (403, the service's forbidden_role).
The audit page names each person's actions. Every page passes axe (no serious or
critical violation) and fits a 1366 px screen; each is photographed for
docs/screenshots (``AFFLUX_SCREENSHOTS=1`` replaces the committed pictures).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser.browser_kit import PageChecks, chromium, gone, left_the_document, start_browser
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

PASSWORD = "a long and private pass phrase"
PEOPLE = {"manager": "Maya Manager", "finance": "Finn Finance", "analyst": "Ana Analyst"}
SALES = ("40.00", "55.00", "61.50")


@dataclass
class Site:
    """Where each service is, and the bootstrap owner's token."""

    console: str
    tracking: str
    partners: str
    gateway: str
    attribution: str
    payouts: str
    admin_token: str

    @classmethod
    def of(cls, platform: Platform) -> Site:
        names = ("console", "tracking", "partners", "gateway", "attribution", "payouts")
        return cls(**{name: platform.url(name) for name in names}, admin_token=platform.admin_token)

    def admin(self, service: str) -> httpx.Client:
        return httpx.Client(
            base_url=getattr(self, service),
            timeout=30,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )


def until(check, timeout: float = 90.0, every: float = 0.3):  # type: ignore[no-untyped-def]
    """Poll ``check`` (a sync callable) until it returns something truthy; return it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout}s: {check.__doc__ or check}"
        time.sleep(every)


class Person:
    """One browser, signed in as one person at a time."""

    def __init__(self, browser: WebDriver, site: Site, pages: PageChecks) -> None:
        self.browser = browser
        self.site = site
        self.pages = pages
        self.wait = WebDriverWait(
            browser, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
        )

    def open(self, path: str, name: str | None = None) -> None:
        for _ in range(5):  # as a person would, again when the page says a service is away
            self.browser.get(f"{self.site.console}{path}")
            self.wait.until(lambda b: b.execute_script("return document.readyState") == "complete")
            if not (self.has("#page-error") and "cannot be reached right now" in self.text()):
                break
            time.sleep(1.0)
        if name:
            self.pages.check(self.browser, name)

    def css(self, selector: str):  # type: ignore[no-untyped-def]
        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def has(self, selector: str) -> bool:
        return bool(self.browser.find_elements(By.CSS_SELECTOR, selector))

    def text(self) -> str:
        return str(self.browser.find_element(By.TAG_NAME, "main").text)

    def submit(self, button: str) -> None:
        """Click a form's button (or a link) and wait for the page it answered with."""
        self.wait.until(lambda b: b.execute_script("return document.readyState") == "complete")
        old = self.browser.find_element(By.TAG_NAME, "html")
        self.wait.until(lambda _: self.clicked(button))
        self.wait.until(lambda _: gone(old))
        self.wait.until(lambda b: b.execute_script("return document.readyState") == "complete")

    def clicked(self, selector: str) -> bool:
        """Click ``selector``; False when the element went from the document in between
        (Chromium's "does not belong to the document"), to be found and clicked again."""
        try:
            self.css(selector).click()
        except WebDriverException as error:
            if left_the_document(error):
                return False
            raise
        return True

    def fill(self, values: dict[str, str], within: str = "") -> None:
        for name, value in values.items():
            field = self.css(f"{within} [name='{name}']")
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            elif field.get_attribute("type") == "checkbox":
                if field.is_selected() != (value == "on"):
                    field.click()
            else:
                field.clear()
                field.send_keys(value)

    def sign_in(self, email: str) -> None:
        self.open("/console/signin")
        self.fill({"email": email, "password": PASSWORD}, "#password-form")
        self.submit("#sign-in")
        assert self.browser.current_url.endswith("/console/dashboard"), self.text()

    def sign_out(self) -> None:
        self.submit("#sign-out")
        assert "/console/signin" in self.browser.current_url

    def notice(self) -> str:
        return str(self.css("#notice").text)


# -- what happens outside the console: the partner and its traffic ------------------------


def new_partner(site: Site) -> tuple[str, str]:
    """A partner of the network with an API key (its portal credential): id, key."""
    with site.admin("partners") as partners:
        made = partners.post(
            "/v1/partners",
            json={
                "name": "Sunny Deals",
                "email": "hi@sunny.example",
                "type": "coupon site",
                "tags": ["coupons", "spring"],
            },
        )
        assert made.status_code == 201, made.text
        partner_id = made.json()["partner_id"]
        key = partners.post(f"/v1/partners/{partner_id}/api-keys")
        assert key.status_code == 201, key.text
    return partner_id, key.json()["api_key"]


def applies(site: Site, offer_id: str, api_key: str) -> None:
    """The partner asks to run the offer through its own API (what the portal's button does)."""

    def applied() -> bool:
        """the gateway takes the partner's application"""
        answer = httpx.post(
            f"{site.gateway}/v1/me/offers/{offer_id}/apply", headers={"X-Api-Key": api_key}, timeout=30
        )
        return answer.status_code in (200, 201)

    until(applied)


def sells(site: Site, offer_id: str, partner_id: str, token: str) -> list[str]:
    """A click on the partner's link and a reported sale for each of ``SALES``: their
    conversion ids."""
    conversions = []
    for amount in SALES:

        def clicked() -> str | None:
            """the tracking link redirects to the offer"""
            answer = httpx.get(
                f"{site.tracking}/c/{offer_id}/{partner_id}",
                follow_redirects=False,
                timeout=30,
                headers={"User-Agent": f"browser-test-{secrets.token_hex(4)}"},
            )
            location = answer.headers.get("location", "")
            return (
                parse_qs(urlsplit(location).query).get("tid", [None])[0]
                if answer.status_code == 302
                else None
            )

        tid = until(clicked)
        answer = httpx.get(
            f"{site.tracking}/postback",
            timeout=30,
            params={
                "transaction_id": tid,
                "event": "sale",
                "amount": amount,
                "currency": "USD",
                "order_id": f"order-{secrets.token_hex(4)}",
                "token": token,
            },
        )
        assert answer.status_code == 200, answer.text
        conversions.append(answer.json()["conversion_id"])
    return conversions


def held_for_review(site: Site, conversions: list[str]) -> None:
    with site.admin("attribution") as attribution:

        def held() -> bool:
            """every sale is decided and held for review"""
            found = [attribution.get(f"/v1/conversions/{c}") for c in conversions]
            return all(
                r.status_code == 200 and r.json()["status"] == "pending" and r.json().get("payout")
                for r in found
            )

        until(held)


def earned(site: Site, partner_id: str) -> None:
    with site.admin("payouts") as payouts:

        def folded() -> bool:
            """payouts has folded the approvals"""
            answer = payouts.get(f"/v1/partners/{partner_id}/balance")
            return (
                answer.status_code == 200
                and answer.json()["balances"].get("USD", {}).get("accrued") == "15.00"
            )

        until(folded)


# -- the people -------------------------------------------------------------------------------


def owner_starts_the_program(person: Person, site: Site) -> dict[str, str]:
    """The bootstrap owner signs in with make run's link and adds the staff: their emails."""
    person.open("/console/signin", "signin")
    person.browser.get(f"{site.console}/console/signin#token={site.admin_token}")
    person.wait.until(expected_conditions.url_contains("/console/dashboard"))
    assert person.css("#viewer-name").text == "Bootstrap owner"
    person.open("/console/dashboard", "dashboard-empty")
    emails = {}
    for role, name in PEOPLE.items():
        person.open("/console/staff")
        emails[role] = f"{role}-{secrets.token_hex(3)}@network.example"
        person.fill({"name": name, "email": emails[role], "password": PASSWORD}, "#new-user")
        Select(person.css("#new-user-role")).select_by_value(role)
        person.submit("#create-user")
        assert "The staff user was created" in person.notice()
    person.pages.check(person.browser, "staff")
    person.sign_out()
    return emails


def manager_creates_the_offer(person: Person) -> tuple[str, str]:
    """The offer, its sale event held for approval: its id and postback token."""
    person.open("/console/offers", "offers-empty")
    person.css("#new-offer").click()
    person.wait.until(expected_conditions.presence_of_element_located((By.ID, "offer-form")))
    person.fill(
        {
            "name": "Spring sale",
            "destination_url": "https://shop.example/spring?tid={transaction_id}",
            "visibility": "require_approval",
            "payout_type": "cpa",
            "payout_amount": "5.00",
            "revenue_type": "cpa",
            "revenue_amount": "8.00",
            "event-0-name": "sale",
            "event-0-payout_type": "cpa",
            "event-0-payout_amount": "5.00",
            "event-0-requires_approval": "on",
            "cap-0-metric": "conversions",
            "cap-0-period": "day",
            "cap-0-limit": "500",
            "max_sale_amount": "1000",
        },
        "#offer-form",
    )
    person.pages.check(person.browser, "offer-new")
    person.submit("#save-offer")
    token = person.css("#postback-token").text
    offer_id = str(person.css("dl.facts code").text)
    assert token and person.css("#offer-name").text.startswith("Spring sale")
    return offer_id, token


def manager_approves(person: Person, offer_id: str) -> None:
    person.open("/console/applications", "applications")
    rows = [
        row
        for row in person.browser.find_elements(By.CSS_SELECTOR, "tr.offer-application")
        if row.find_elements(By.CSS_SELECTOR, f"a[href='/console/offers/{offer_id}']")
    ]
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == ["Sunny Deals"], person.text()
    person.submit(f"form[action^='/console/offers/{offer_id}/applications/'][action$='/approve'] button")
    assert person.notice() == "Application approved."
    person.open(f"/console/offers/{offer_id}", "offer")
    assert "Approved" in person.css("#offer-partners").text


def manager_reviews(person: Person, conversions: list[str]) -> None:
    person.open("/console/conversions", "conversions-pending")
    shown = {box.get_attribute("value") for box in person.browser.find_elements(By.NAME, "conversion")}
    assert set(conversions) <= shown, person.text()
    person.open(f"/console/conversions/{conversions[0]}", "conversion")
    assert "Requires approval" in person.text() and person.has("#trace tbody tr")
    person.open("/console/conversions")
    person.css("#select-all").click()
    Select(person.css("#bulk-action")).select_by_value("approve")
    person.submit("#bulk-review")
    assert person.notice() == "The chosen conversions were approved."
    assert "Nothing waits for review" in person.text()


def finance_pays(person: Person, partner_id: str) -> str:
    person.open("/console/statements")
    person.submit("#close-period")
    assert person.notice().startswith("The period was closed"), person.text()
    person.pages.check(person.browser, "statements")
    person.open(f"/console/statements?partner_id={partner_id}")
    link = person.css("#statements a[href^='/console/statements/']:not([href$='.csv'])")
    statement_id = str(link.get_attribute("href")).rsplit("/", 1)[1]
    person.open(f"/console/statements/{statement_id}")
    assert person.css("#statement-total").text == "15.00 USD"
    person.fill({"reference": "wire 2026-0042"}, "#pay-form")
    person.submit("#mark-paid")
    assert person.notice() == "The statement was marked paid."
    person.pages.check(person.browser, "statement")
    return statement_id


def analyst_sees_everything_and_changes_nothing(
    person: Person, site: Site, partner_id: str, offer_id: str, statement_id: str, conversion_id: str
) -> None:
    person.open("/console/dashboard", "dashboard")
    assert person.css("#month-USD [data-figure=conversions]").text == "3"
    assert person.css("#month-USD [data-figure=payout]").text == "15.00 USD"
    person.open("/console/partners", "partners")
    person.open(f"/console/partners/{partner_id}", "partner")
    assert "Spring sale" in person.css("#relationships").text and person.has("#balance")
    person.open(f"/console/offers/{offer_id}")
    person.open("/console/conversions?status=approved")
    assert len(person.browser.find_elements(By.CSS_SELECTOR, "tr.conversion")) == 3
    person.open(f"/console/statements/{statement_id}")
    assert "Paid" in person.css("#statement-status").text
    person.open("/console/postbacks", "postbacks")
    person.open("/console/operations", "operations")
    person.open("/console/account", "account")
    for path, controls in {
        "/console/offers": ["#new-offer"],
        f"/console/offers/{offer_id}": ["#edit-offer", "#add-partner"],
        "/console/conversions": ["#bulk-review", "#select-all"],
        f"/console/conversions/{conversion_id}": ["#status-form"],
        "/console/statements": ["#close-period"],
        f"/console/partners/{partner_id}": ["#issue-key", "#status-suspended"],
        "/console/applications": ["button.approve"],
        "/console/partners": ["#create-partner"],
    }.items():
        person.open(path)
        offered = [selector for selector in controls if person.has(selector)]
        assert not offered, f"{path} offers an analyst {offered}"
    assert not person.has("a[href='/console/staff']")
    forged_in_the_page(person, "/console/statements/close", {"period_end": "2026-01-31"})
    forged_with_the_cookie(
        person, site, "/console/conversions/review", {"conversion": conversion_id, "action": "reverse"}
    )


def forged_in_the_page(person: Person, action: str, fields: dict[str, str]) -> None:
    """A form the page does not offer, built and posted in the analyst's own browser."""
    person.browser.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post'; form.action = arguments[0];
        const add = (name, value) => { const i = document.createElement('input');
            i.type = 'hidden'; i.name = name; i.value = value; form.appendChild(i); };
        add('csrf', document.querySelector('input[name=csrf]').value);
        for (const [name, value] of Object.entries(arguments[1])) add(name, value);
        document.body.appendChild(form); form.submit();""",
        action,
        fields,
    )
    person.wait.until(expected_conditions.presence_of_element_located((By.ID, "page-error")))
    assert "You may not do this" in person.css("#page-error").text and "forbidden" not in person.browser.title


def forged_with_the_cookie(person: Person, site: Site, action: str, fields: dict[str, str]) -> None:
    cookie = {c["name"]: c["value"] for c in person.browser.get_cookies()}
    page = httpx.get(f"{site.console}/console/account", cookies=cookie, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    answer = httpx.post(
        f"{site.console}{action}", data={"csrf": csrf.group(1), **fields}, cookies=cookie, timeout=30
    )
    assert answer.status_code == 403 and "may not" in answer.text, answer.text


def audit_names_everyone(person: Person, offer_id: str, statement_id: str) -> None:
    person.open("/console/audit", "audit")
    entries = [row.text for row in person.browser.find_elements(By.CSS_SELECTOR, "tr.audit-entry")]
    for _ in range(10):  # newest first, a page at a time: the owner's first acts are pages back
        if not person.has("#next-page"):
            break
        person.submit("#next-page")  # a link: the same click and wait for the next page
        entries += [row.text for row in person.browser.find_elements(By.CSS_SELECTOR, "tr.audit-entry")]

    def by(name: str, action: str) -> bool:
        return any(name in entry and action in entry for entry in entries)

    expected = [
        ("Bootstrap owner", "StaffUserCreated"),
        ("Maya Manager", "OfferCreated"),
        ("Maya Manager", "RelationshipSet"),
        ("Maya Manager", "ConversionStatusChanged"),
        ("Finn Finance", "StatementIssued"),
        ("Finn Finance", "StatementPaid"),
    ]
    missing = [pair for pair in expected if not by(*pair)]
    assert not missing, f"the audit page does not name {missing}:\n" + "\n".join(entries)
    person.open(f"/console/audit?subject={statement_id}")
    assert "Finn Finance" in person.text()


def run_the_program(site: Site, pages: PageChecks) -> None:
    browser = start_browser()
    person = Person(browser, site, pages)
    try:
        emails = owner_starts_the_program(person, site)
        partner_id, api_key = new_partner(site)

        person.sign_in(emails["manager"])
        offer_id, token = manager_creates_the_offer(person)
        person.pages.check(browser, "offer-created", shoot=False)
        applies(site, offer_id, api_key)
        manager_approves(person, offer_id)
        conversions = sells(site, offer_id, partner_id, token)
        held_for_review(site, conversions)
        manager_reviews(person, conversions)
        person.sign_out()

        earned(site, partner_id)
        person.sign_in(emails["finance"])
        statement_id = finance_pays(person, partner_id)
        person.sign_out()

        person.sign_in(emails["analyst"])
        analyst_sees_everything_and_changes_nothing(
            person, site, partner_id, offer_id, statement_id, conversions[0]
        )
        audit_names_everyone(person, offer_id, statement_id)
        person.sign_out()
    finally:
        browser.quit()


async def test_a_first_program_run_by_owner_manager_finance_and_analyst_in_the_console(
    platform: Platform, tmp_path: Path
) -> None:
    chromium()  # fail at once, saying how to install it
    pages = PageChecks.for_docs(tmp_path)
    await asyncio.to_thread(run_the_program, Site.of(platform), pages)
    print("\naccessibility (axe-core, violations by impact):\n" + pages.table())
