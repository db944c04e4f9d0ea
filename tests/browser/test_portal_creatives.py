"""The portal's creatives page in a real browser (Chromium through chromium-driver, as
``test_portal.py``): a partner signs in with its key, opens an offer's "Creatives" from
the offers page, sees the banner (the image served by the gateway), copies code that holds
its own link, fills in a sub, and sees the email previewed in a sandboxed frame where its
script never runs. The page passes axe and fits a 1366 px screen; its screenshot goes to
docs/screenshots with ``AFFLUX_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
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
from PIL import Image
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from afflux_contracts import BannerImage, CreativeKind, CreativeSet, ImageFormat, Visibility
from afflux_infra.testing import eventually
from afflux_plumbing.publish import Publisher

pytestmark = pytest.mark.slow

EMAIL_BODY = ('<p style="color:#1f2a44">Spring is here: <a href="{tracking_link}">Shop the sale</a></p>'
              "<script>document.body.insertAdjacentHTML('beforeend', '<p id=ran>ran</p>')</script>")


@pytest.fixture(scope="module")
async def gateway(infra: SessionInfra, bootstrap_for_platform: str) -> AsyncIterator[RunningGateway]:
    """On a broker of its own (tests/conftest.py); no page here asks payouts for anything."""
    service = RunningGateway(infra.new_database(), bootstrap_for_platform, f"test-{secrets.token_hex(4)}")
    await service.start()
    yield service
    await service.stop()


class Seeded:
    """A partner approved on a private offer with a 300x250 banner and an email whose
    script must never run."""

    def __init__(self) -> None:
        self.partner_id, self.api_key, self.offer_id = new_id("p"), new_key(), new_id("o")
        self.banner_id, self.email_id = new_id("cr"), new_id("cr")

    async def publish(self, log: Publisher) -> None:
        picture = io.BytesIO()
        Image.new("RGB", (300, 250), "seagreen").save(picture, "PNG")
        data = picture.getvalue()
        image = BannerImage(format=ImageFormat.PNG, width=300, height=250, byte_size=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), data=base64.b64encode(data).decode())
        banner = CreativeSet(creative_id=self.banner_id, offer_id=self.offer_id, name="Rectangle",
                             kind=CreativeKind.BANNER, image=image, alt_text="Garden tools: 20% off")
        email = CreativeSet(creative_id=self.email_id, offer_id=self.offer_id, name="Spring mail",
                            kind=CreativeKind.EMAIL, subject_lines=("Spring is here",), html_body=EMAIL_BODY)
        await publish(log, partner(self.partner_id, "Creative Partner"),
                      key_issued(self.partner_id, self.api_key),
                      offer(self.offer_id, Visibility.PRIVATE, name="Garden tools"),
                      relationship(self.offer_id, self.partner_id), wrap(banner), wrap(email))


def code_of(browser: WebDriver, creative_id: str) -> str:
    area = browser.find_element(By.CSS_SELECTOR, f"#creative-{creative_id} textarea.code")
    return str(area.get_attribute("value"))


def browse_the_creatives(base_url: str, seeded: Seeded, pages: PageChecks) -> None:
    browser = start_browser()
    wait = WebDriverWait(browser, 15,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    link = f"{TRACKING_URL}/c/{seeded.offer_id}/{seeded.partner_id}"
    try:
        browser.get(f"{base_url}/portal/signin")
        browser.find_element(By.ID, "api_key").send_keys(seeded.api_key)
        browser.find_element(By.ID, "sign-in").click()
        wait.until(expected_conditions.url_contains("/portal/dashboard"))
        browser.find_element(By.LINK_TEXT, "Offers").click()
        wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#offer-{seeded.offer_id} a.creatives-link"))).click()
        card = wait.until(expected_conditions.presence_of_element_located(
            (By.ID, f"creative-{seeded.banner_id}")))
        preview = card.find_element(By.CSS_SELECTOR, ".banner-preview img")
        wait.until(lambda _: preview.get_property("naturalWidth") == 300)
        assert preview.get_attribute("alt") == "Garden tools: 20% off"
        code = code_of(browser, seeded.banner_id)
        assert code.startswith(f'<a href="{link}"><img src="{base_url}/creatives/'), code
        assert 'width="300" height="250" alt="Garden tools: 20% off"></a>' in code, code
        card.find_element(By.CSS_SELECTOR, "button.copy").click()
        wait.until(lambda _: card.find_element(By.CSS_SELECTOR, "button.copy").text == "Copied")

        browser.find_element(By.NAME, "sub1").send_keys("spring")
        browser.find_element(By.CSS_SELECTOR, "button.generate").click()
        wait.until(across_navigation(lambda b: f'href="{link}?sub1=spring"' in code_of(b, seeded.banner_id)))
        assert f'href="{link}?sub1=spring"' in code_of(browser, seeded.email_id)
        frame = browser.find_element(By.CSS_SELECTOR, f"#creative-{seeded.email_id} iframe.email-preview")
        assert frame.get_attribute("sandbox") == ""
        pages.check(browser, "portal-creatives")
        browser.switch_to.frame(frame)
        shown = wait.until(expected_conditions.presence_of_element_located((By.LINK_TEXT, "Shop the sale")))
        assert shown.get_attribute("href") == f"{link}?sub1=spring"
        assert not browser.find_elements(By.ID, "ran"), "the email's script ran in the preview"
    finally:
        browser.quit()


async def test_a_partner_sees_an_offers_creatives_with_its_own_link_in_the_code(
    gateway: RunningGateway, bootstrap_for_platform: str, tmp_path: Path
) -> None:
    chromium()  # fail at once, saying how to install it, rather than after seeding
    seeded = Seeded()
    log = Publisher(bootstrap_for_platform, client_id="portal-creatives-test")
    await log.start()
    try:
        await seeded.publish(log)
    finally:
        await log.stop()

    def shelved() -> bool:
        answer = gateway.get(f"/v1/me/offers/{seeded.offer_id}/creatives", seeded.api_key)
        return answer.status_code == 200 and len(answer.json()["creatives"]) == 2

    await eventually(shelved, timeout=60)
    pages = PageChecks.for_docs(tmp_path)
    await asyncio.to_thread(browse_the_creatives, gateway.base_url, seeded, pages)
    print("\naccessibility (axe-core, violations by impact):\n" + pages.table())
