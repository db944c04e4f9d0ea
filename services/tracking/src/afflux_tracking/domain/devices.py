"""A user agent's families (as the ua-parser project names them: ``Mobile Safari``,
``Mac OS X``, ``iPad``) turned into the few values targeting and reports use: device
``desktop|mobile|tablet|other``, operating system ``windows|macos|ios|android|linux|
chromeos|other``, browser ``chrome|safari|firefox|edge|opera|samsung|other``.

The parser's families are many and change with its rules; an advertiser targets "iOS
phones", not "Mobile Safari UI/WKWebView 17.4". The parser names the family, these rules
name the class, so a new parser release changes nothing an offer says.
"""

from __future__ import annotations

_OS = {"windows": "windows", "mac os x": "macos", "macos": "macos", "ios": "ios", "ipados": "ios",
       "android": "android", "chrome os": "chromeos", "chromeos": "chromeos"}
_LINUX = ("linux", "ubuntu", "debian", "fedora", "red hat", "suse", "opensuse", "arch linux", "mint",
          "gentoo", "kubuntu", "xubuntu", "centos", "mandriva", "slackware")
_MOBILE_OS = ("windows phone", "windows mobile", "blackberry os", "blackberry", "kaios", "symbian os",
              "firefox os", "tizen", "sailfish", "harmonyos")
_TABLETS = ("ipad", "kindle", "tablet", "playbook", "xoom", "nexus 7", "nexus 9", "nexus 10", "galaxy tab",
            "sm-t", "lenovo tab", "mediapad", "matepad")
_BROWSERS = (("edge", "edge"), ("samsung internet", "samsung"), ("opera", "opera"), ("chrom", "chrome"),
             ("firefox", "firefox"), ("safari", "safari"))
"""Family prefixes in the order they are tried (Edge and Samsung before Chrome: they are
Chromium too, and say so)."""


def os_class(os_family: str) -> str:
    family = os_family.lower()
    if family in _OS:
        return _OS[family]
    if family.startswith("windows") and family not in _MOBILE_OS:
        return "windows"
    if family.startswith(_LINUX):
        return "linux"
    return "other"


def browser_class(browser_family: str) -> str:
    family = browser_family.lower()
    if family.startswith("mobile safari"):
        return "safari"
    return next((name for prefix, name in _BROWSERS if family.startswith(prefix)), "other")


def device_class(os_family: str, device_family: str, user_agent: str) -> str:
    """Tablet, mobile, desktop or other, from the operating system, the device the parser
    names and what the agent says of itself (an Android tablet's agent has no "Mobile")."""
    device, os = device_family.lower(), os_class(os_family)
    mobile_word = "mobile" in user_agent.lower()
    if device == "spider":
        return "other"
    if any(tablet in device for tablet in _TABLETS) or (os == "android" and not mobile_word):
        return "tablet"
    if os in ("ios", "android") or os_family.lower() in _MOBILE_OS or mobile_word:
        return "mobile"
    if os in ("windows", "macos", "linux", "chromeos"):
        return "desktop"
    return "other"
