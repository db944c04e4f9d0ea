"""Which of several offers a click goes to: an offer's fail traffic (the offers that take
the clicks it cannot) and a smart link's offers.

Offers come in tiers tried one after the other (fail traffic by priority: one offer a
tier, in the list's order; by weight: one tier of all; a smart link: one tier per
priority). Within a tier an offer is drawn in proportion to its weight among those not
yet tried; one that does not take the click (``takes`` says: the partner may not run it,
the visitor fails its targeting, it is over a cap) is set aside and the draw repeated
among the rest. So each offer that takes the click gets exactly its weight's share of
the tier's offers that take it, and an offer is asked at most once per click: a cap is
only counted for the offer that takes it.

The choice is a pure function of the offers, ``takes`` and the draws, so its shares are
tested over many draws without a process (``test_alternatives.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate, groupby
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """An offer a click may go to, and its share among the others of its tier (0: never)."""

    offer_id: str
    weight: int = 1


@dataclass(frozen=True)
class Alternatives:
    """Tiers of candidates, tried in order."""

    tiers: tuple[tuple[Candidate, ...], ...] = ()

    @classmethod
    def in_order(cls, offer_ids: Iterable[str]) -> Alternatives:
        """The first listed offer that takes the click (fail traffic by priority)."""
        return cls(tuple((Candidate(offer_id),) for offer_id in offer_ids))

    @classmethod
    def weighted(cls, candidates: Iterable[Candidate]) -> Alternatives:
        """One drawn by weight among those that take the click (fail traffic by weight)."""
        return cls((tuple(candidates),))

    @classmethod
    def ranked(cls, candidates: Iterable[tuple[int, Candidate]]) -> Alternatives:
        """By ``(priority, candidate)``: the lowest priority first, by weight among equals
        (a smart link); the list's order is kept within a priority."""
        ordered = sorted(candidates, key=lambda ranked: ranked[0])
        return cls(tuple(tuple(c for _, c in tier) for _, tier in groupby(ordered, key=lambda r: r[0])))

    @property
    def first(self) -> str | None:
        """The first offer of positive weight in the order tiers are tried (else the first)."""
        listed = [candidate for tier in self.tiers for candidate in tier]
        ordered = [candidate for candidate in listed if candidate.weight > 0] or listed
        return ordered[0].offer_id if ordered else None


def choose(alternatives: Alternatives, takes: Callable[[str], T | None],
           draw: Callable[[], float]) -> T | None:
    """What ``takes`` answers for the first offer that takes the click, or ``None`` when
    none does; ``draw`` gives uniform numbers in [0, 1)."""
    for tier in alternatives.tiers:
        left = [candidate for candidate in tier if candidate.weight > 0]
        while left:
            picked = drawn(left, draw())
            taken = takes(picked.offer_id)
            if taken is not None:
                return taken
            left.remove(picked)
    return None


def drawn(candidates: list[Candidate], draw: float) -> Candidate:
    """The candidate a uniform ``draw`` in [0, 1) picks, each with its weight's share."""
    if len(candidates) == 1:
        return candidates[0]
    cumulative = list(accumulate(candidate.weight for candidate in candidates))
    at = bisect_right(cumulative, draw * cumulative[-1])
    return candidates[min(at, len(candidates) - 1)]
