"""Where a valid click lands: a deep link only onto the offer's allowed domains (never an
open redirect), else the landing page the link names, else one rotated by weight."""

from __future__ import annotations

from collections import Counter

import pytest

from afflux_tracking.domain.destinations import (
    Destinations,
    Landing,
    LandingPage,
    allowed_deep_link,
    landing,
)

DESTINATION = "https://shop.example/land?tid={transaction_id}"
SPRING = LandingPage("spring", "https://shop.example/spring?tid={transaction_id}", weight=3)
AUTUMN = LandingPage("autumn", "https://shop.example/autumn?tid={transaction_id}", weight=1)
HIDDEN = LandingPage("hidden", "https://shop.example/hidden", weight=0)
ALLOWED = ("allowed.com",)


@pytest.mark.parametrize("url", [
    "https://allowed.com/product/42?tid={transaction_id}",
    "http://allowed.com",
    "https://www.allowed.com/a",
    "https://deep.shop.allowed.com:8443/a",
    "HTTPS://Allowed.COM/a",
    "https://allowed.com./a",
    "https://allowed.com#@evil.com",
])
def test_a_deep_link_onto_an_allowed_domain_or_its_subdomain_is_followed(url: str) -> None:
    assert allowed_deep_link(url, ALLOWED)
    assert landing(DESTINATION, Destinations(ALLOWED), url, None, 0.5) == Landing(url, deep_link=True)


@pytest.mark.parametrize("url", [
    "https://evil.com/",
    "https://evil-allowed.com/",
    "https://allowedxcom/",
    "https://allowed.com.evil.com/",
    "https://allowed.com@evil.com/",
    "https://allowed.com:443@evil.com/",
    "https://user:pw@allowed.com/",
    "https://evil.com\\@allowed.com/",
    "https://evil.com\\.allowed.com/",
    "//evil.com/",
    "//allowed.com/",
    "/relative/path",
    "javascript:alert(document.domain)//allowed.com",
    "data:text/html,<script>alert(1)</script>",
    "ftp://allowed.com/",
    "https:allowed.com",
    "https:///allowed.com",
    "https://allowed.com\t.evil.com/",
    "https://allowed.com\n/",
    " https://allowed.com/",
    "https://allowed.com%2eevil.com/",
    "https://{sub1}.allowed.com/",
    "https://allowed.com:{sub1}/",
    "https://allowed.com:99999999/",
    "https://xn--allowed-.com/",
    "https://allöwed.com/",
    "https://[::1]/",
    "",
    "https://allowed.com/" + "a" * 3000,
])
def test_a_deep_link_anywhere_else_is_never_followed(url: str) -> None:
    assert not allowed_deep_link(url, ALLOWED)
    assert landing(DESTINATION, Destinations(ALLOWED), url, None, 0.5) == Landing(DESTINATION)


def test_an_offer_without_deep_link_domains_follows_no_deep_link() -> None:
    assert landing(DESTINATION, Destinations(), "https://allowed.com/", None, 0.5) == Landing(DESTINATION)


def test_a_refused_deep_link_lands_where_the_link_would_without_it() -> None:
    destinations = Destinations(ALLOWED, (SPRING, AUTUMN))
    landed = landing(DESTINATION, destinations, "https://evil.com/", "autumn", 0.0)
    assert landed == Landing(AUTUMN.url, "autumn")


def test_the_landing_page_a_link_names_wins_over_the_rotation_even_at_weight_zero() -> None:
    destinations = Destinations((), (SPRING, AUTUMN, HIDDEN))
    assert landing(DESTINATION, destinations, None, "hidden", 0.0) == Landing(HIDDEN.url, "hidden")
    assert landing(DESTINATION, destinations, None, "autumn", 0.0) == Landing(AUTUMN.url, "autumn")


def test_an_unknown_url_id_is_rotated_like_a_link_naming_none() -> None:
    destinations = Destinations((), (SPRING,))
    assert landing(DESTINATION, destinations, None, "gone", 0.9) == Landing(SPRING.url, "spring")


def test_pages_are_rotated_in_proportion_to_their_weights_and_weight_zero_never() -> None:
    destinations = Destinations((), (SPRING, HIDDEN, AUTUMN))
    draws = [i / 1000 for i in range(1000)]  # evenly spread: the shares are exact
    landed = Counter(landing(DESTINATION, destinations, None, None, draw).landing_page_id for draw in draws)
    assert landed == {"spring": 750, "autumn": 250}


def test_an_offer_whose_pages_all_weigh_zero_lands_on_its_destination() -> None:
    destinations = Destinations((), (HIDDEN,))
    assert landing(DESTINATION, destinations, None, None, 0.3) == Landing(DESTINATION)
