"""A visitor's country by its address (the package's own country file, or a MaxMind
database an operator names) and its device, operating system and browser by its user
agent (the ua-parser project's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_mmdb import country_database

from afflux_tracking.adapters.visitor_profiles import VisitorProfiles
from afflux_tracking.domain.targeting import VisitorProfile

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1")
PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.0.0 Mobile Safari/537.36")
GALAXY_TAB = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
SAMSUNG_PHONE = ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36")
WINDOWS_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.4 Safari/605.1.15")
LINUX_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROMEBOOK = ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")


@pytest.fixture(scope="module")
def profiles() -> VisitorProfiles:
    return VisitorProfiles()


@pytest.mark.parametrize(("user_agent", "device", "os", "browser"), [
    (IPHONE, "mobile", "ios", "safari"),
    (IPAD, "tablet", "ios", "safari"),
    (PIXEL, "mobile", "android", "chrome"),
    (GALAXY_TAB, "tablet", "android", "chrome"),
    (SAMSUNG_PHONE, "mobile", "android", "samsung"),
    (WINDOWS_EDGE, "desktop", "windows", "edge"),
    (WINDOWS_CHROME, "desktop", "windows", "chrome"),
    (MAC_SAFARI, "desktop", "macos", "safari"),
    (LINUX_FIREFOX, "desktop", "linux", "firefox"),
    (CHROMEBOOK, "desktop", "chromeos", "chrome"),
    ("curl/8.5.0", "other", "other", "other"),
])
def test_known_user_agents_are_read_as_their_device_system_and_browser(
    profiles: VisitorProfiles, user_agent: str, device: str, os: str, browser: str,
) -> None:
    assert profiles.profile(None, user_agent) == VisitorProfile(None, device, os, browser)


@pytest.mark.parametrize(("ip", "country"), [
    ("81.2.69.160", "GB"), ("200.160.2.3", "BR"), ("2001:4860:4860::8888", "US"),
    ("127.0.0.1", None), ("10.1.2.3", None), ("203.0.113.9", None), ("not an address", None),
])
def test_an_address_is_read_as_its_country(profiles: VisitorProfiles, ip: str, country: str | None) -> None:
    assert profiles.profile(ip, None) == VisitorProfile(country=country)


def test_a_maxmind_database_when_one_is_named_is_where_countries_are_read(tmp_path: Path) -> None:
    database = tmp_path / "countries.mmdb"
    database.write_bytes(country_database({"81.2.69.0/24": "FR", "198.51.100.0/24": "JP"}))
    profiles = VisitorProfiles(database)
    assert [profiles.profile(ip, None).country for ip in ("81.2.69.160", "198.51.100.7", "200.160.2.3",
                                                           "2001:4860:4860::8888", "nonsense")] == [
        "FR", "JP", None, None, None]
    assert profiles.profile("198.51.100.7", IPHONE) == VisitorProfile("JP", "mobile", "ios", "safari")
