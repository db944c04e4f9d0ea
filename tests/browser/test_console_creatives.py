"""An offer's creatives in the console, in a real browser (Chromium through chromium-driver,
as ``test_console.py``), over a real console and partners service: a manager opens the
offer's "Creatives", uploads a banner through the form's file input (a PNG made here),
sees it previewed from the console's own image route, adds an email whose script never
runs in its sandboxed preview, has an SVG refused at the image field, and archives the
banner. The pages pass axe and fit a 1366 px screen; their screenshots go to
docs/screenshots with ``AFFLUX_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from browser.browser_kit import PageChecks, chromium, gone, start_browser
from console_fixtures import PASSWORD, RunningConsole
from partners_fixtures import ADMIN_TOKEN as PARTNERS_TOKEN
from partners_fixtures import RunningPartners, offer_body
from PIL import Image
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from test_console_pages import new_user, nowhere  # noqa: F401 (a fixture)

from afflux_console.entrypoints.browser_session import SESSION_COOKIE

pytestmark = pytest.mark.slow

EMAIL_BODY = ('<p style="color:#1f2a44">Spring is here: <a href="{tracking_link}">Shop the sale</a></p>'
              "<script>document.body.insertAdjacentHTML('beforeend', '<p id=ran>ran</p>')</script>")
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="250"><script>alert(1)</script></svg>'


@pytest.fixture(scope="module")
async def partners(infra: object, bootstrap_for_platform: str) -> AsyncIterator[RunningPartners]:
    async with RunningPartners(infra.new_database(), bootstrap_for_platform,  # type: ignore[attr-defined]
                               AFFLUX_TRACKING_URL="https://track.example/") as service:
        yield service


@pytest.fixture(scope="module")
async def console(infra: object, bootstrap_for_platform: str, partners: RunningPartners,
                  nowhere: None) -> AsyncIterator[RunningConsole]:  # noqa: F811 (the fixture)
    """The console asking the real partners; every other service a port nothing listens on."""
    os.environ["AFFLUX_PARTNERS_URL"] = partners.base_url
    async with RunningConsole(infra.new_database(), bootstrap_for_platform) as service:  # type: ignore[attr-defined]
        yield service


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A 300x250 PNG banner and an SVG, as files the browser's file input can pick."""
    png = io.BytesIO()
    Image.new("RGB", (300, 250), "seagreen").save(png, "PNG")
    (tmp_path / "spring.png").write_bytes(png.getvalue())
    (tmp_path / "logo.svg").write_text(SVG)
    yield {"png": tmp_path / "spring.png", "svg": tmp_path / "logo.svg"}


class Manager:
    """One browser, signed in as a manager."""

    def __init__(self, browser: WebDriver, base_url: str, pages: PageChecks) -> None:
        self.browser, self.base_url, self.pages = browser, base_url, pages
        self.wait = WebDriverWait(browser, 30,
                                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def css(self, selector: str):  # type: ignore[no-untyped-def]
        return self.wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))

    def submit(self, selector: str) -> None:
        """Click and wait for the page the click answered with."""
        old = self.browser.find_element(By.TAG_NAME, "html")
        self.css(selector).click()
        self.wait.until(lambda _: gone(old))
        self.wait.until(lambda b: b.execute_script("return document.readyState") == "complete")

    def sign_in(self, email: str, partners: RunningPartners) -> None:
        self.browser.get(f"{self.base_url}/console/signin")
        self.css("#password-form [name=email]").send_keys(email)
        self.css("#password-form [name=password]").send_keys(PASSWORD)
        self.submit("#sign-in")
        token = self.browser.get_cookie(SESSION_COOKIE)["value"]  # type: ignore[index]
        admitted = WebDriverWait(self.browser, 30)
        admitted.until(lambda _: partners.get("/v1/offers", headers={"Authorization": f"Bearer {token}"})
                       .status_code != 401)

    def new_banner(self, name: str, file: Path) -> None:
        self.submit("#new-banner")
        self.css("#creative-form [name=name]").send_keys(name)
        self.css("#creative-form [name=alt_text]").send_keys("Garden tools: 20% off")
        self.css("#creative-form input[type=file]").send_keys(str(file))


def manage_the_creatives(manager: Manager, offer_id: str, files: dict[str, Path]) -> None:
    manager.browser.get(f"{manager.base_url}/console/offers/{offer_id}")
    manager.submit("#offer-creatives")
    manager.new_banner("Rectangle", files["png"])
    assert manager.css("#creative-form input[type=file]").get_attribute("accept") == (
        "image/png,image/jpeg,image/gif,image/webp")
    manager.pages.check(manager.browser, "creative-new")
    manager.submit("#save-creative")
    assert "The creative was added" in manager.css("#notice").text
    preview = manager.css(".creative .banner-preview img")
    manager.wait.until(lambda _: preview.get_property("naturalWidth") == 300)
    banner = str(manager.css(".creative").get_attribute("id")).removeprefix("creative-")

    manager.submit("#new-email")
    manager.css("#creative-form [name=name]").send_keys("Spring mail")
    manager.css("#creative-form [name=subject_lines]").send_keys("Spring is here")
    manager.css("#creative-form [name=html_body]").send_keys(EMAIL_BODY)
    manager.submit("#save-creative")
    frame = manager.css("iframe.email-preview")
    assert frame.get_attribute("sandbox") == ""
    manager.pages.check(manager.browser, "creatives")
    manager.browser.switch_to.frame(frame)
    manager.wait.until(expected_conditions.presence_of_element_located((By.LINK_TEXT, "Shop the sale")))
    assert not manager.browser.find_elements(By.ID, "ran"), "the email's script ran in the preview"
    manager.browser.switch_to.default_content()

    manager.new_banner("Vector", files["svg"])
    manager.submit("#save-creative")
    assert "SVG is refused" in manager.css("#image-error").text
    assert manager.css("#creative-form [name=name]").get_attribute("value") == "Vector"
    manager.pages.check(manager.browser, "creative-refused", shoot=False)

    manager.submit("a[href$='/creatives']")
    manager.submit(f"#archive-{banner}")
    assert "archived" in manager.css("#notice").text
    assert not manager.browser.find_elements(By.ID, f"creative-{banner}")


async def test_a_manager_uploads_a_banner_through_the_creatives_form_and_archives_it(
    console: RunningConsole, partners: RunningPartners, files: dict[str, Path], tmp_path: Path
) -> None:
    chromium()  # fail at once, saying how to install it
    email = (await new_user(console.base_url, "manager"))["email"]
    async with httpx.AsyncClient(base_url=partners.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {PARTNERS_TOKEN}"}) as admin:
        made = await admin.post("/v1/offers", json=offer_body(name="Garden tools"))
    assert made.status_code == 201, made.text
    pages = PageChecks.for_docs(tmp_path / "shots")

    def run() -> None:
        browser = start_browser()
        try:
            manager = Manager(browser, console.base_url, pages)
            manager.sign_in(email, partners)
            manage_the_creatives(manager, made.json()["offer_id"], files)
        finally:
            browser.quit()

    await asyncio.to_thread(run)
    print("\naccessibility (axe-core, violations by impact):\n" + pages.table())
