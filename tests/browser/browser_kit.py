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
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
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
