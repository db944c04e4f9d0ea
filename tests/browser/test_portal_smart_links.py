"""The portal's smart links page in a real browser (Chromium through chromium-driver, as
``test_portal.py``): a partner signs in with its key, opens "Smart links", sees the link
that holds an offer it may run (with only those offers) and not the one holding only a
private offer it is not approved on, generates its link with a sub and copies it. The
page passes axe and fits a 1366 px screen; its screenshot goes to docs/screenshots with
``AFFLUX_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser.browser_kit import PageChecks, across_navigation, chromium, start_browser
from gateway_fixtures import (
    TRACKING_URL,
    RunningGateway,
    SessionInfra,
    key_issued,
    new_id,
    new_key,
    offer,
    partner,
    publish,
    relationship,
    wrap,
)
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from afflux_contracts import RoutedOffer, SmartLinkSet, Visibility
from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def gateway(infra: SessionInfra, bootstrap_for_platform: str) -> AsyncIterator[RunningGateway]:
    """On a broker of its own (tests/conftest.py); no page here asks payouts for anything."""
    service = RunningGateway(infra.new_database(), bootstrap_for_platform, f"test-{secrets.token_hex(4)}")
    await service.start()
    yield service
    await service.stop()


class Seeded:
    """A partner approved on one private offer, a public offer, and a private one it is not
    approved on; a smart link "Spring mix" over the three, and one "Hidden mix" over the
    last alone."""

    def __init__(self) -> None:
        self.partner_id, self.api_key = new_id("p"), new_key()
        self.approved, self.public, self.hidden = new_id("o"), new_id("o"), new_id("o")
        self.mix, self.hidden_mix = new_id("s"), new_id("s")

    async def publish(self, log: Publisher) -> None:
        def smart_link(smart_link_id: str, name: str, *offer_ids: str) -> SmartLinkSet:
            return SmartLinkSet(smart_link_id=smart_link_id, name=name,
                                offers=tuple(RoutedOffer(offer_id=o) for o in offer_ids))

        await publish(log, partner(self.partner_id, "Smart Partner"),
                      key_issued(self.partner_id, self.api_key),
                      offer(self.approved, Visibility.PRIVATE, amount="4.00", name="Garden tools"),
                      relationship(self.approved, self.partner_id),
                      offer(self.public, Visibility.PUBLIC, amount="2.50", name="Seeds"),
                      offer(self.hidden, Visibility.PRIVATE, name="Secret greenhouse"),
                      wrap(smart_link(self.mix, "Spring mix", self.hidden, self.approved, self.public)),
                      wrap(smart_link(self.hidden_mix, "Hidden mix", self.hidden)))


def drive_the_page(base_url: str, seeded: Seeded, pages: PageChecks) -> None:
    browser = start_browser()
    wait = WebDriverWait(browser, 15,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    try:
        browser.get(f"{base_url}/portal/signin")
        browser.find_element(By.ID, "api_key").send_keys(seeded.api_key)
        browser.find_element(By.ID, "sign-in").click()
        wait.until(expected_conditions.url_contains("/portal/dashboard"))

        browser.find_element(By.LINK_TEXT, "Smart links").click()
        card = wait.until(expected_conditions.presence_of_element_located(
            (By.ID, f"smart-link-{seeded.mix}")))
        listed = [item.get_attribute("data-offer") for item in card.find_elements(By.CSS_SELECTOR, "li")]
        assert listed == [seeded.approved, seeded.public], "only the offers it may run, in the link's order"
        assert "Secret greenhouse" not in browser.page_source and "Hidden mix" not in browser.page_source
        field = f"smart-link-url-{seeded.mix}"
        assert browser.find_element(By.ID, field).get_attribute("value") == (
            f"{TRACKING_URL}/s/{seeded.mix}/{seeded.partner_id}")

        card.find_element(By.NAME, "sub1").send_keys("spring mail")
        card.find_element(By.CSS_SELECTOR, "button.generate").click()
        expected = f"{TRACKING_URL}/s/{seeded.mix}/{seeded.partner_id}?sub1=spring+mail"
        wait.until(across_navigation(
            lambda b: b.find_element(By.ID, field).get_attribute("value") == expected))
        copy = browser.find_element(By.CSS_SELECTOR, f"#smart-link-{seeded.mix} button.copy")
        copy.click()
        wait.until(lambda _: copy.text == "Copied")
        pages.check(browser, "portal-smart-links")
    finally:
        browser.quit()


async def test_a_partner_copies_its_smart_link_and_sees_only_offers_it_may_run(
    gateway: RunningGateway, bootstrap_for_platform: str, tmp_path: Path
) -> None:
    chromium()  # fail at once, saying how to install it, rather than after seeding
    log = Publisher(bootstrap_for_platform, client_id="portal-smart-links-test")
    await log.start()
    try:
        seeded = Seeded()
        await seeded.publish(log)
    finally:
        await log.stop()

    def applied() -> bool:
        """The key, both links, the offers and the approval are in the views."""
        answer = gateway.get("/v1/me/smart-links", seeded.api_key)
        links = answer.json().get("smart_links", []) if answer.status_code == 200 else []
        return [len(link["offers"]) for link in links] == [2]

    await eventually(applied, timeout=60)
    pages = PageChecks.for_docs(tmp_path)
    await asyncio.to_thread(drive_the_page, gateway.base_url, seeded, pages)
    print("\naccessibility (axe-core, violations by impact):\n" + pages.table())
