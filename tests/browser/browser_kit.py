"""What the browser tests share: Debian's Chromium through Selenium, the accessibility check
(axe-core, bundled by the ``selenium-axe-python`` package: nothing is fetched at test
time), and screenshots of each page for docs/screenshots.

Screenshots go to a temporary directory unless ``AFFLUX_SCREENSHOTS=1``: then they replace
the committed ones in ``docs/screenshots/`` (so a CI run never rewrites the tree).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium_axe_python.axe import Axe

INSTALL = (
    "the browser tests need Debian's Chromium and its driver: "
    "`apt-get install -y chromium chromium-driver` (as root; .ci/run installs them when missing)"
)
SERIOUS = ("serious", "critical")
WIDTH, HEIGHT = 1366, 900
"""A laptop screen: every page must fit its width."""
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium() -> tuple[str, str]:
    """Paths of the browser and its driver, or a failure that says how to install them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(f"{INSTALL} (found chromium={browser}, chromedriver={driver})")
    return browser, driver


def start_browser(width: int = WIDTH, height: int = HEIGHT) -> WebDriver:
    browser, driver = chromium()
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
        "--lang=en-US",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@dataclass
class PageChecks:
    """Each page checked: axe's violations by impact, and its screenshot."""

    shots: Path
    results: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def for_docs(cls, fallback: Path) -> PageChecks:
        keep = os.environ.get("AFFLUX_SCREENSHOTS") == "1"
        target = DOCS if keep else fallback
        target.mkdir(parents=True, exist_ok=True)
        return cls(target)

    def check(self, browser: WebDriver, name: str, shoot: bool = True) -> None:
        """No serious or critical accessibility violation, no horizontal scrolling at the
        laptop width; a full-page screenshot named ``name``."""
        axe = Axe(browser)
        axe.inject()  # type: ignore[no-untyped-call]
        violations = axe.run()["violations"]
        self.results[name] = Counter(str(v["impact"]) for v in violations)
        serious = [v for v in violations if v["impact"] in SERIOUS]
        assert not serious, f"{name} ({browser.current_url}): {axe.report(serious)}"
        overflow = browser.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= WIDTH, f"{name} is {overflow} px wide: wider than a {WIDTH} px screen"
        if shoot:
            self.screenshot(browser, name)

    def screenshot(self, browser: WebDriver, name: str) -> None:
        """The whole page at the laptop width (Chromium's device metrics stretched to the
        page's height for the shot)."""
        tall = int(browser.execute_script("return document.documentElement.scrollHeight"))
        metrics = {
            "width": WIDTH,
            "height": min(max(tall, HEIGHT), 6000),
            "deviceScaleFactor": 1,
            "mobile": False,
        }
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        try:
            browser.save_screenshot(str(self.shots / f"{name}.png"))
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def table(self) -> str:
        """What axe found on each page, by impact (none serious or critical, or the test failed)."""
        lines = [f"{'page':<28} {'critical':>8} {'serious':>8} {'moderate':>8} {'minor':>6}"]
        for name, counts in self.results.items():
            lines.append(
                f"{name:<28} {counts['critical']:>8} {counts['serious']:>8} "
                f"{counts['moderate']:>8} {counts['minor']:>6}"
            )
        return "\n".join(lines)


def left_the_document(error: WebDriverException) -> bool:
    """Chromium's answer about an element of a page being replaced: a stale reference, or
    (mid-navigation) an "unhandled inspector error" that the node "does not belong to the
    document"."""
    return (isinstance(error, StaleElementReferenceException)
            or "does not belong to the document" in str(error))


def gone(element: WebElement) -> bool:
    """Whether ``element``'s page has been replaced (``staleness_of``, which knows only the
    first of Chromium's two answers)."""
    try:
        element.is_enabled()
    except WebDriverException as error:
        if left_the_document(error):
            return True
        raise
    return False


def across_navigation(check: Callable[[WebDriver], Any]) -> Callable[[WebDriver], Any]:
    """``check`` for a ``WebDriverWait``, answering False (try again) while the page it reads
    is being replaced, e.g. after a click on a form that navigates; any other error is raised."""
    def checked(browser: WebDriver) -> Any:
        try:
            return check(browser)
        except WebDriverException as error:
            if left_the_document(error):
                return False
            raise
    return checked
