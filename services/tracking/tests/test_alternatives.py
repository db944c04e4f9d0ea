"""Choosing among offers (fail traffic, smart links): tiers in order, by weight among the
offers of a tier that take the click, each offer asked at most once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from afflux_tracking.domain.alternatives import Alternatives, Candidate, choose

DRAWS = 10_000


def shares(alternatives: Alternatives, taking: set[str], seed: int = 22) -> dict[str, float]:
    draws = random.Random(seed)
    chosen = Counter(choose(alternatives, lambda offer_id: offer_id if offer_id in taking else None,
                            draws.random) for _ in range(DRAWS))
    return {offer_id: count / DRAWS for offer_id, count in chosen.items()}


@pytest.mark.parametrize("seed", [1, 22, 333])
def test_a_smart_links_weights_among_equals_hold_within_5_percent_over_10000_clicks(seed: int) -> None:
    link = Alternatives.ranked([(1, Candidate("a", 5)), (1, Candidate("b", 3)), (1, Candidate("c", 2))])

    found = shares(link, {"a", "b", "c"}, seed)

    for offer_id, expected in {"a": 0.5, "b": 0.3, "c": 0.2}.items():
        assert abs(found[offer_id] - expected) <= 0.05 * expected, (offer_id, found)


def test_the_weights_are_shared_among_the_offers_that_take_the_click_only() -> None:
    link = Alternatives.weighted([Candidate("a", 3), Candidate("refuses", 6), Candidate("b", 1)])

    found = shares(link, {"a", "b"})

    assert set(found) == {"a", "b"}
    assert abs(found["a"] - 0.75) <= 0.05 * 0.75 and abs(found["b"] - 0.25) <= 0.05 * 0.25


def test_a_lower_priority_takes_the_click_before_any_higher_one_and_weight_0_never_does() -> None:
    link = Alternatives.ranked([(2, Candidate("later")), (1, Candidate("first")), (1, Candidate("never", 0))])

    assert shares(link, {"first", "later", "never"}) == {"first": 1.0}
    assert shares(link, {"later", "never"}) == {"later": 1.0}
    assert shares(link, {"never"}) == {None: 1.0}


def test_in_order_the_first_listed_offer_that_takes_the_click_wins_and_each_is_asked_once() -> None:
    asked: list[str] = []

    def takes(offer_id: str) -> str | None:
        asked.append(offer_id)
        return offer_id if offer_id == "c" else None

    chosen = choose(Alternatives.in_order(["a", "b", "c", "d"]), takes, random.random)

    assert (chosen, asked) == ("c", ["a", "b", "c"])
    assert choose(Alternatives.in_order(["a", "a"]), lambda _: None, random.random) is None


def test_the_first_offer_is_the_first_of_positive_weight_in_the_order_tiers_are_tried() -> None:
    link = Alternatives.ranked([(2, Candidate("b")), (1, Candidate("zero", 0)), (1, Candidate("a"))])

    assert [[c.offer_id for c in tier] for tier in link.tiers] == [["zero", "a"], ["b"]]
    assert (link.first, Alternatives().first) == ("a", None)
