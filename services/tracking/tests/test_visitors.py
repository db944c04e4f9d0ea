"""What a request says about its visitor: bots and prefetches, decided the same however
often an agent is seen, within a bounded memory of agents."""

from __future__ import annotations

import pytest

from afflux_contracts import ClickOutcome
from afflux_tracking.domain.visitors import KNOWN_AGENTS, _bot_agent, is_bot, traffic_outcome

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@pytest.mark.parametrize("agent", ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl-bot/1",
                                   "python-requests/2.32", "Mozilla/5.0 HeadlessChrome/120.0",
                                   "UptimeRobot/2.0", "facebookexternalhit/1.1"])
def test_a_known_automated_agent_is_a_bot_every_time_it_is_seen(agent: str) -> None:
    assert [traffic_outcome("GET", agent, {}) for _ in range(3)] == [ClickOutcome.BOT] * 3


@pytest.mark.parametrize("agent", [BROWSER, "curl/8.5.0", None, ""])
def test_a_person_or_an_unnamed_client_is_not_a_bot(agent: str | None) -> None:
    assert not is_bot(agent) and not is_bot(agent)


def test_a_head_probe_or_a_prefetch_is_no_visit_even_from_a_browser() -> None:
    assert traffic_outcome("HEAD", BROWSER, {}) is ClickOutcome.PREFETCH
    assert traffic_outcome("GET", BROWSER, {"sec-purpose": "prefetch;prerender"}) is ClickOutcome.PREFETCH
    assert traffic_outcome("GET", BROWSER, {}) is ClickOutcome.VALID


def test_agents_that_are_all_different_keep_the_memory_bounded_and_the_verdicts_right() -> None:
    for n in range(KNOWN_AGENTS + 500):
        assert is_bot(f"crawler-{n}") is True
        assert is_bot(f"Mozilla/5.0 build {n}") is False
    assert _bot_agent.cache_info().currsize <= KNOWN_AGENTS
    assert is_bot("crawler-0") and not is_bot("Mozilla/5.0 build 0")
