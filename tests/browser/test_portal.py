"""The partner portal in a real browser: Debian's Chromium, headless, driven by Selenium
through chromium-driver. A partner signs in with its API key, sees on the dashboard the
figures the log holds, generates a tracking link with a sub and copies it, sees its
conversions and its balance, and signs out. Every page passes axe (no serious or critical
violation) and fits a 1366 px screen, as the console's do (``browser_kit``); its
screenshots go to docs/screenshots with ``AFFLUX_SCREENSHOTS=1``.

Install the browser with ``apt-get install -y chromium chromium-driver`` (``.ci/run``
does it when missing). Without it this test fails, saying so: it never skips.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser.browser_kit import PageChecks, chromium, start_browser
from gateway_fixtures import (
    TRACKING_URL,
    RunningGateway,
    RunningPayouts,
    SessionInfra,
    attributed,
    click,
    key_issued,
    new_id,
    new_key,
    offer,
    partner,
    publish,
    rejected,
    relationship,
)
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from afflux_contracts import Visibility
from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
async def payouts(infra: SessionInfra, bootstrap_for_platform: str) -> AsyncIterator[RunningPayouts]:
    """The real ledger the balance page shows (the gateway asks it with its service token)."""
    service = RunningPayouts(infra.new_database(), bootstrap_for_platform, f"test-{secrets.token_hex(4)}")
    await service.start()
    yield service
    await service.stop()


@pytest.fixture(scope="module")
async def gateway(
    infra: SessionInfra, bootstrap_for_platform: str, payouts: RunningPayouts
) -> AsyncIterator[RunningGateway]:
    """On a broker of its own (tests/conftest.py): the gateway reads every topic from offset 0."""
    service = RunningGateway(infra.new_database(), bootstrap_for_platform, f"test-{secrets.token_hex(4)}",
                             AFFLUX_PAYOUTS_URL=payouts.base_url)
    await service.start()
    yield service
    await service.stop()


class Seeded:
    """A partner whose log holds 4 clicks (3 unique, 3 with sub1) and 2 attributed sales of
    6.50 each (payout 13.00) plus a rejected one, yesterday."""

    def __init__(self) -> None:
        self.partner_id, self.offer_id = new_id("p"), new_id("o")
        self.api_key = new_key()
        self.day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)

    async def publish(self, log: Publisher) -> None:
        tids = [new_id("t") for _ in range(4)]
        await publish(log, partner(self.partner_id, "Browser Partner"),
                      key_issued(self.partner_id, self.api_key),
                      offer(self.offer_id, Visibility.PRIVATE, amount="6.50", name="Winter boots"),
                      relationship(self.offer_id, self.partner_id))
        for index, tid in enumerate(tids):
            await publish(log, click(tid, self.offer_id, self.partner_id, at=self.day, unique=index != 3,
                                     **({"sub1": "mail"} if index < 3 else {})))
        await publish(log, attributed(tids[0], self.offer_id, self.partner_id, payout="6.50", at=self.day),
                      attributed(tids[1], self.offer_id, self.partner_id, payout="6.50", at=self.day),
                      rejected(tids[2], self.offer_id, self.partner_id, at=self.day))


def text(browser: WebDriver, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def drive_the_portal(base_url: str, seeded: Seeded, pages: PageChecks) -> None:
    browser = start_browser()
    wait = WebDriverWait(browser, 15,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    try:
        browser.get(f"{base_url}/portal")
        wait.until(expected_conditions.url_contains("/portal/signin"))
        pages.check(browser, "portal-signin")
        browser.find_element(By.ID, "api_key").send_keys("afx_live_not-the-key")
        browser.find_element(By.ID, "sign-in").click()
        error = wait.until(expected_conditions.presence_of_element_located((By.ID, "error")))
        assert "not valid" in error.text

        browser.find_element(By.ID, "api_key").send_keys(seeded.api_key)
        browser.find_element(By.ID, "sign-in").click()
        wait.until(expected_conditions.url_contains("/portal/dashboard"))
        figures = {name: text(browser, f"#total-{name}")
                   for name in ("clicks", "unique-clicks", "conversions", "cvr", "epc", "payout")}
        assert figures == {"clicks": "4", "unique-clicks": "3", "conversions": "2", "cvr": "50.00%",
                           "epc": "3.2500", "payout": "13.00 USD"}, figures
        assert browser.find_element(By.ID, "chart").tag_name == "svg"
        assert text(browser, "#partner-name") == "Browser Partner"
        pages.check(browser, "portal-dashboard")

        browser.find_element(By.LINK_TEXT, "Offers").click()
        card = wait.until(expected_conditions.presence_of_element_located(
            (By.ID, f"offer-{seeded.offer_id}")))
        card.find_element(By.NAME, "sub1").send_keys("spring mail")
        card.find_element(By.CSS_SELECTOR, "button.generate").click()
        expected = f"{TRACKING_URL}/c/{seeded.offer_id}/{seeded.partner_id}?sub1=spring+mail"
        # The form reloads the page: read the link afresh until the new page shows it
        # (an element found on the old page goes stale under the reload).
        link_id = f"link-{seeded.offer_id}"
        wait.until(lambda b: b.find_element(By.ID, link_id).get_attribute("value") == expected)
        copy = browser.find_element(By.CSS_SELECTOR, f"#offer-{seeded.offer_id} button.copy")
        copy.click()
        wait.until(lambda _: copy.text == "Copied")
        pages.check(browser, "portal-offers")

        browser.find_element(By.LINK_TEXT, "Conversions").click()
        wait.until(expected_conditions.url_contains("/portal/conversions"))
        statuses = sorted(cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.status"))
        reasons = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.reason")]
        assert statuses == ["approved", "approved", "rejected"] and "duplicate" in reasons
        pages.check(browser, "portal-conversions")

        browser.find_element(By.LINK_TEXT, "Balance").click()
        wait.until(expected_conditions.url_contains("/portal/balance"))
        assert text(browser, "#balance td.accrued") == "13.00", "the two sales, as the ledger holds them"
        pages.check(browser, "portal-balance")

        browser.find_element(By.ID, "sign-out").click()
        wait.until(expected_conditions.url_contains("/portal/signin"))
        browser.get(f"{base_url}/portal/dashboard")
        wait.until(expected_conditions.url_contains("/portal/signin"))
        names = {cookie["name"] for cookie in browser.get_cookies()}
        assert "afflux_session" not in names, "signing out leaves no session cookie behind"
    finally:
        browser.quit()


async def test_a_partner_signs_in_sees_its_numbers_makes_a_link_and_signs_out(
    gateway: RunningGateway, payouts: RunningPayouts, bootstrap_for_platform: str, tmp_path: Path
) -> None:
    chromium()  # fail at once, saying how to install it, rather than after seeding
    log = Publisher(bootstrap_for_platform, client_id="portal-browser-test")
    await log.start()
    try:
        seeded = Seeded()
        await seeded.publish(log)
    finally:
        await log.stop()

    def applied() -> bool:
        """Every seeded record is in the views: the report's two sales and, published
        last, the rejected conversion."""
        body = gateway.get("/v1/me/report", seeded.api_key).json()
        conversions = gateway.get("/v1/me/conversions", seeded.api_key).json().get("conversions", [])
        accrued = payouts.balance(seeded.partner_id)["balances"].get("USD", {}).get("accrued")
        return (bool(body.get("totals")) and body["totals"][0]["conversions"] == 2 and len(conversions) == 3
                and accrued == "13.00")

    await eventually(applied, timeout=60)
    pages = PageChecks.for_docs(tmp_path)
    await asyncio.to_thread(drive_the_portal, gateway.base_url, seeded, pages)
    print("\naccessibility (axe-core, violations by impact):\n" + pages.table())
