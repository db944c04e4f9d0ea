"""Which visitors an offer takes: each rule on its own, the first failed one as the reason,
and an unknown value passing a deny list but failing an allow list; a relationship's
targeting narrowing the offer's for one partner, never widening it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from afflux_tracking.domain.targeting import (
    AllowDeny,
    DayParting,
    Domains,
    Targeting,
    VisitorProfile,
    link_targeting_failure,
    referrer_host,
    targeting_failure,
)

IPHONE_IN_US = VisitorProfile(country="US", device="mobile", os="ios", browser="safari")
MONDAY_NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def failure(targeting: Targeting, visitor: VisitorProfile = IPHONE_IN_US, referer: str | None = None,
            at: datetime = MONDAY_NOON_UTC) -> str | None:
    return targeting_failure(targeting, visitor, referer, at)


def allow(*values: str) -> AllowDeny:
    return AllowDeny(allow=frozenset(values))


def deny(*values: str) -> AllowDeny:
    return AllowDeny(deny=frozenset(values))


def test_an_offer_without_rules_takes_everyone() -> None:
    assert failure(Targeting()) is None
    assert failure(Targeting(), VisitorProfile()) is None


@pytest.mark.parametrize(("targeting", "reason"), [
    (Targeting(countries=allow("CA", "GB")), "countries"),
    (Targeting(countries=deny("US")), "countries"),
    (Targeting(devices=allow("desktop")), "devices"),
    (Targeting(devices=deny("mobile", "tablet")), "devices"),
    (Targeting(operating_systems=allow("android")), "operating_systems"),
    (Targeting(operating_systems=deny("ios")), "operating_systems"),
    (Targeting(browsers=allow("chrome")), "browsers"),
    (Targeting(browsers=deny("safari")), "browsers"),
])
def test_a_visitor_outside_a_rule_fails_it_by_name(targeting: Targeting, reason: str) -> None:
    assert failure(targeting) == reason


@pytest.mark.parametrize("targeting", [
    Targeting(countries=allow("US", "CA")), Targeting(countries=deny("GB")),
    Targeting(devices=allow("mobile")), Targeting(operating_systems=allow("ios", "android")),
    Targeting(browsers=deny("opera")),
])
def test_a_visitor_inside_a_rule_passes_it(targeting: Targeting) -> None:
    assert failure(targeting) is None


def test_the_first_rule_failed_is_the_reason() -> None:
    targeting = Targeting(countries=allow("GB"), devices=allow("desktop"), browsers=allow("chrome"))
    assert failure(targeting) == "countries"


def test_an_unknown_country_passes_a_deny_list_and_fails_an_allow_list() -> None:
    nowhere = VisitorProfile(country=None, device="desktop", os="linux", browser="firefox")
    assert failure(Targeting(countries=deny("US")), nowhere) is None
    assert failure(Targeting(countries=allow("US")), nowhere) == "countries"


def test_referrer_domains_match_a_domain_and_its_subdomains_only() -> None:
    only_news = Targeting(referrer_domains=Domains(allow=("news.example",)))
    assert failure(only_news, referer="https://news.example/a") is None
    assert failure(only_news, referer="https://www.News.Example./a?b") is None
    assert failure(only_news, referer="https://fake-news.example/") == "referrer_domains"
    assert failure(only_news, referer=None) == "referrer_domains"  # no Referer: not from there
    no_spam = Targeting(referrer_domains=Domains(deny=("spam.example",)))
    assert failure(no_spam, referer="http://a.spam.example/") == "referrer_domains"
    assert failure(no_spam, referer=None) is None
    assert failure(no_spam, referer="not a url") is None


def test_day_parting_is_read_in_the_offers_time_zone() -> None:
    new_york = ZoneInfo("America/New_York")  # Monday 12:00 UTC is Monday 07:00 there
    weekdays, nine_to_six = frozenset(range(1, 6)), frozenset(range(9, 18))
    office_hours = Targeting(day_parting=DayParting(new_york, weekdays, nine_to_six))
    assert failure(office_hours) == "day_parting"
    assert failure(office_hours, at=datetime(2026, 12, 7, 14, 0, tzinfo=UTC)) is None  # 09:00 there
    sunday = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)  # Sunday 10:00 in New York
    assert failure(office_hours, at=sunday) == "day_parting"
    tokyo_monday = Targeting(day_parting=DayParting(ZoneInfo("Asia/Tokyo"), weekdays=frozenset({1})))
    assert failure(tokyo_monday, at=datetime(2026, 12, 6, 16, 0, tzinfo=UTC)) is None  # Monday 01:00 there


@pytest.mark.parametrize(("referer", "host"), [
    ("https://Blog.Example/post?x=1", "blog.example"), ("android-app://com.app/", "com.app"),
    ("", None), (None, None), ("/relative", None), ("http://[::1/", None),
])
def test_the_referrer_host_is_read_from_the_referer_header(referer: str | None, host: str | None) -> None:
    assert referrer_host(referer) == host


def on_link(offer: Targeting | None, relationship: Targeting | None,
            visitor: VisitorProfile = IPHONE_IN_US) -> str | None:
    return link_targeting_failure(offer, relationship, visitor, None, MONDAY_NOON_UTC)


def test_a_link_without_targeting_takes_everyone() -> None:
    assert on_link(None, None) is None
    assert on_link(Targeting(), Targeting(), VisitorProfile()) is None


def test_a_relationship_narrows_the_offers_targeting_and_says_it_refused() -> None:
    us_or_ca = Targeting(countries=allow("US", "CA"))
    canada_for_this_partner = Targeting(countries=allow("CA"))
    assert on_link(us_or_ca, None) is None
    assert on_link(us_or_ca, canada_for_this_partner) == "relationship_countries"
    in_canada = VisitorProfile(country="CA", device="mobile", os="ios", browser="safari")
    assert on_link(us_or_ca, canada_for_this_partner, in_canada) is None
    assert on_link(None, Targeting(devices=deny("mobile"))) == "relationship_devices"


def test_a_relationship_never_admits_a_visitor_the_offer_refuses() -> None:
    """The relationship allows the US, the offer does not: the offer's refusal stands, by
    the offer's rule's name."""
    no_us = Targeting(countries=deny("US"))
    assert on_link(no_us, Targeting(countries=allow("US"))) == "countries"
    assert on_link(Targeting(browsers=allow("chrome")), Targeting(countries=deny("US"))) == "browsers"
