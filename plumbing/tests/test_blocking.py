"""A dead letter blocks its key: the key's later records go to the DLQ behind it, in
order, while other keys flow; a redrive of the key applies them all in order and frees
it, one that fails again keeps it blocked; a crash between the dead letter and its commit
loses nothing (``afflux_plumbing.blocking``). On a real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from tally import Roster, partner_created
from test_consumer import running
from test_parking import afflux, consumer

from afflux_contracts import Envelope, OfferStatus, OfferStatusChanged, encode
from afflux_infra.blocked import held_letters
from afflux_infra.dlq import dead_letters
from afflux_infra.testing import eventually
from afflux_plumbing.blocking import BEHIND, FREE, HEAD, Held, digest, verdict
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import Unprocessable
from afflux_plumbing.store import Write

CONVERSION = b"conv-1"
"""The key whose first record cannot be applied."""


async def send_batch(producer: AIOKafkaProducer, topic: str, *records: tuple[str, bytes | None]) -> None:
    """Each (name, key) as a PartnerCreated of that name under that key, in one produce
    request: the consumer fetches them together and applies them as one run."""
    deliveries = [await producer.send(topic, encode(partner_created(name)), key=key) for name, key in records]
    for delivery in deliveries:
        await delivery


def held(database_url: str, topic: str) -> list[tuple[str, str, int]]:
    """Each held letter of ``topic``: (where it was first read, its latest letter, how many)."""
    return [(h.source, h.dead_letter, h.letters) for h in held_letters(database_url, topic)]


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_blocked_keys_record_is_its_heads_copy_behind_the_head_or_free() -> None:
    first, second = (Held(n, digest(value), Position("t", 0, n), f"t.dlq#0@{n}")
                     for n, value in enumerate((b"first", b"second")))

    assert verdict([first, second], b"first", handled=True) == HEAD
    assert verdict([first, second], b"first", handled=False) == HEAD  # settled whatever it is now
    assert verdict([first, second], b"second", handled=True) == BEHIND  # redriven before its head
    assert verdict([first, second], b"third", handled=True) == BEHIND
    assert verdict([first, second], b"third", handled=False) == FREE  # changes nothing here
    assert verdict([], b"first", handled=True) == FREE  # discarded meanwhile


async def test_later_records_of_a_dead_lettered_key_go_to_the_dlq_behind_it_and_other_keys_flow(
    roster: Roster, topic: str, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["first"] = Unprocessable("its click is unknown")
    behind_before = sample("afflux_held_behind_total", {"topic": topic})
    await send_batch(raw_producer, topic, ("first", CONVERSION), ("free-1", b"conv-2"),
                     ("second", CONVERSION), ("free-2", b"conv-3"), ("third", CONVERSION))
    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=60)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 4)
        assert roster.counts() == {"free-1": 1, "free-2": 1}
        # Once the key is known blocked, a run is cut around its record and the rest apply.
        await send_batch(raw_producer, topic, ("free-3", b"conv-4"), ("fourth", CONVERSION),
                         ("free-4", b"conv-5"))
        await eventually(lambda: roster.stored_offset(topic, 0) == 7)

    assert roster.applied_order() == ["free-1", "free-2", "free-3", "free-4"]
    behind = f"behind {topic}#0@0"
    assert [(letter.source, letter.reason) for letter in await dead_letters(kafka_bootstrap, topic)] == [
        (f"{topic}#0@0", "unprocessable: its click is unknown"), (f"{topic}#0@2", behind),
        (f"{topic}#0@4", behind), (f"{topic}#0@6", behind)]
    assert held(database_url, topic) == [(f"{topic}#0@{source}", f"{topic}.dlq#0@{n}", 1)
                                         for n, source in enumerate((0, 2, 4, 6))]
    assert sample("afflux_held_behind_total", {"topic": topic}) - behind_before == 3
    assert sample("afflux_blocked_keys", {"group": group_prefix, "topic": topic}) == 1
    listed = await afflux("dlq", "blocked", topic, bootstrap=kafka_bootstrap, database=database_url)
    assert [line.split("\t") for line in listed.splitlines()][1] == [
        "roster.roster", topic, "conv-1", f"{topic}#0@2", f"{topic}.dlq#0@1", "1", behind]


async def test_a_redrive_that_fails_again_keeps_the_key_blocked_and_one_that_applies_frees_it_in_order(
    roster: Roster, topic: str, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["first"] = Unprocessable("its click is unknown")
    await send_batch(raw_producer, topic, ("first", CONVERSION), ("second", CONVERSION), ("free", b"conv-2"),
                     ("third", CONVERSION))

    async def redrive_the_key() -> list[str]:
        out = await afflux("dlq", "redrive", topic, "--key", CONVERSION.decode(), bootstrap=kafka_bootstrap,
                           database=database_url)
        return out.splitlines()

    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=60)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 3)
        redriven = await redrive_the_key()
        assert redriven == [f"redriven {topic}.dlq#0@{n} to {topic}#0@{4 + n}" for n in range(3)]
        await eventually(lambda: roster.stored_offset(topic, 0) == 6)
        # The first failed again: it leads still, and the two behind it went back behind it.
        assert held(database_url, topic) == [(f"{topic}#0@{source}", f"{topic}.dlq#0@{n}", 2)
                                             for n, source in zip((3, 4, 5), (0, 1, 3), strict=True)]
        assert roster.counts() == {"free": 1}

        del roster.refusals["first"]  # what it waited for is there now
        assert len(await redrive_the_key()) == 3
        await eventually(lambda: roster.stored_offset(topic, 0) == 9)
        assert held(database_url, topic) == []
        await send_batch(raw_producer, topic, ("fourth", CONVERSION))  # a free key: applied at once
        await eventually(lambda: roster.stored_offset(topic, 0) == 10)

    assert roster.applied_order() == ["free", "first", "second", "third", "fourth"]
    assert roster.counts() == dict.fromkeys(("free", "first", "second", "third", "fourth"), 1)
    assert sample("afflux_blocked_keys", {"group": group_prefix, "topic": topic}) == 0
    assert len(await dead_letters(kafka_bootstrap, topic)) == 6  # nothing sent after the block was lifted


class Crash(Exception):
    """The process dying after the broker acknowledged the dead letter, before the commit."""


async def test_a_crash_between_the_dead_letter_and_its_commit_neither_loses_the_block_nor_applies_twice(
    roster: Roster, topic: str, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    roster.refusals["first"] = Unprocessable("its click is unknown")
    await send_batch(raw_producer, topic, ("first", CONVERSION), ("second", CONVERSION))
    record_position = roster.record_position
    crashed: list[Position] = []

    def crash_once(position: Position, also: Sequence[Write] = ()) -> None:
        if also and not crashed:
            crashed.append(position)
            raise Crash(f"killed before committing {position}")
        record_position(position, also)

    monkeypatch.setattr(roster, "record_position", crash_once)
    with pytest.raises(Crash):
        crashing = consumer(roster, topic, kafka_bootstrap, publisher, f"{group_prefix}-a", 60)
        await asyncio.wait_for(crashing.run(), timeout=60)
    assert len(await dead_letters(kafka_bootstrap, topic)) == 1  # on the DLQ, but neither position nor hold
    assert (roster.stored_offset(topic, 0), held(database_url, topic)) == (None, [])

    async with running(consumer(roster, topic, kafka_bootstrap, publisher, f"{group_prefix}-b", 60)):
        # The restarted process reads it again, sends it again, and holds it this time.
        await eventually(lambda: roster.stored_offset(topic, 0) == 1)
        assert held(database_url, topic) == [(f"{topic}#0@0", f"{topic}.dlq#0@1", 1),
                                             (f"{topic}#0@1", f"{topic}.dlq#0@2", 1)]
        del roster.refusals["first"]
        await afflux("dlq", "redrive", topic, "--key", CONVERSION.decode(), bootstrap=kafka_bootstrap,
                     database=database_url)
        await eventually(lambda: roster.stored_offset(topic, 0) == 3)
    assert roster.applied_order() == ["first", "second"]
    assert held(database_url, topic) == []


async def test_a_record_without_a_key_never_blocks_and_is_never_held(
    roster: Roster, topic: str, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    await raw_producer.send_and_wait(topic, b"{not json")
    await send_batch(raw_producer, topic, ("after", None))
    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=60)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 1)
    assert roster.counts() == {"after": 1}
    assert [letter.source for letter in await dead_letters(kafka_bootstrap, topic)] == [f"{topic}#0@0"]
    assert held(database_url, topic) == []


async def test_a_discarded_head_lets_the_key_wait_only_for_the_letters_behind_it(
    roster: Roster, topic: str, database_url: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["first"] = Unprocessable("can never be applied")
    await send_batch(raw_producer, topic, ("first", CONVERSION), ("second", CONVERSION))
    paused = Envelope.wrap(OfferStatusChanged(offer_id="o-1", status=OfferStatus.PAUSED), producer="test")
    await raw_producer.send_and_wait(topic, encode(paused), key=CONVERSION)  # no handler here: never held
    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=60)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 2)
        discarded = await afflux("dlq", "discard", topic, "0", "0", bootstrap=kafka_bootstrap,
                                 database=database_url)
        assert discarded.splitlines() == [
            f"discarded {topic}#0@0 in roster.roster: key 'conv-1' still waits for {topic}#0@1"]
        await afflux("dlq", "redrive", topic, "--key", CONVERSION.decode(), bootstrap=kafka_bootstrap,
                     database=database_url)
        await eventually(lambda: roster.stored_offset(topic, 0) == 3)
    assert held(database_url, topic) == []
    assert roster.applied_order() == ["second"]
    assert [letter.source for letter in await dead_letters(kafka_bootstrap, topic)] == [
        f"{topic}#0@0", f"{topic}#0@1"]
