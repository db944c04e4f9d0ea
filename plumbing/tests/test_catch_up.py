"""Catching up with a topic's end (``LogCatchUp``) on a real broker: a caller learns the
store has applied every record acknowledged before it asked, callers arriving together
share one offsets request, a caller that gives up leaves the others' round alone, and a
broker that does not answer is a ``False`` within the caller's timeout."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from afflux_infra.embedded import EmbeddedBroker, free_port
from afflux_infra.provision import ensure_topics
from afflux_plumbing.catch_up import LogCatchUp

PARTITIONS = 4


class Applied:
    """What a store has applied of each partition: the test moves it as a consumer would."""

    def __init__(self, *, in_memory: bool = True) -> None:
        self.offsets: dict[int, int] = {}
        self.positions_in_memory = in_memory
        self.asked_from: set[int] = set()

    def stored_offset(self, topic: str, partition: int) -> int | None:
        self.asked_from.add(threading.get_ident())
        return self.offsets.get(partition)


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"test.catchup.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(name, PARTITIONS)])
    return name


@pytest.fixture
async def written(kafka_bootstrap: str, topic: str) -> AsyncIterator[dict[int, int]]:
    """Two records acknowledged on each partition: the last offset of each."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    last = {}
    for partition in range(PARTITIONS):
        for _ in range(2):
            sent = await producer.send_and_wait(topic, b"fact", partition=partition)
            last[partition] = sent.offset
    await producer.stop()
    yield last


@pytest.fixture
async def caught(kafka_bootstrap: str, topic: str) -> AsyncIterator[tuple[LogCatchUp, Applied]]:
    applied = Applied()
    catch_up = LogCatchUp(applied, topic, kafka_bootstrap)
    yield catch_up, applied
    await catch_up.stop()


def counting_requests(catch_up: LogCatchUp) -> list[Any]:
    """Every request the catch-up's client sends, in order (the client itself still sends it)."""
    sent: list[Any] = []
    send = catch_up.ends.client.send

    async def recorded(node_id: int, request: Any, **kwargs: Any) -> Any:
        sent.append(request)
        return await send(node_id, request, **kwargs)

    catch_up.ends.client.send = recorded  # type: ignore[method-assign]
    return sent


async def test_a_catch_up_waits_until_every_record_acknowledged_before_it_is_applied(
        caught: tuple[LogCatchUp, Applied], written: dict[int, int]) -> None:
    catch_up, applied = caught
    applied.offsets = {partition: offset - 1 for partition, offset in written.items()}
    waiting = asyncio.create_task(catch_up.caught_up(5.0))
    await asyncio.sleep(0.3)
    assert not waiting.done()

    applied.offsets = dict(written)

    assert await waiting is True


async def test_a_store_that_has_applied_everything_is_caught_up_at_once(
        caught: tuple[LogCatchUp, Applied], written: dict[int, int]) -> None:
    catch_up, applied = caught
    applied.offsets = dict(written)

    started = time.monotonic()
    assert await catch_up.caught_up(5.0) is True
    assert time.monotonic() - started < 2.0


async def test_an_empty_partition_needs_nothing_applied(caught: tuple[LogCatchUp, Applied]) -> None:
    catch_up, _ = caught
    assert await catch_up.caught_up(5.0) is True


async def test_callers_arriving_together_share_one_offsets_request(
        caught: tuple[LogCatchUp, Applied], written: dict[int, int]) -> None:
    catch_up, applied = caught
    applied.offsets = dict(written)
    assert await catch_up.caught_up(5.0)  # connected, metadata known
    sent = counting_requests(catch_up)

    answers = await asyncio.gather(*(catch_up.caught_up(5.0) for _ in range(20)))

    assert answers == [True] * 20
    assert len(sent) == 1


async def test_a_caller_arriving_after_a_request_was_sent_waits_for_one_of_its_own(
        caught: tuple[LogCatchUp, Applied], written: dict[int, int]) -> None:
    catch_up, applied = caught
    applied.offsets = dict(written)
    assert await catch_up.caught_up(5.0)
    sent = counting_requests(catch_up)

    first = asyncio.create_task(catch_up.caught_up(5.0))
    while not sent:
        await asyncio.sleep(0)
    second = asyncio.create_task(catch_up.caught_up(5.0))

    assert await asyncio.gather(first, second) == [True, True]
    assert len(sent) == 2


async def test_a_caller_that_gives_up_leaves_the_others_waiting(
        caught: tuple[LogCatchUp, Applied], written: dict[int, int]) -> None:
    catch_up, applied = caught
    applied.offsets = {partition: offset - 1 for partition, offset in written.items()}
    impatient = asyncio.create_task(catch_up.caught_up(0.2))
    patient = asyncio.create_task(catch_up.caught_up(5.0))
    leaving = asyncio.create_task(catch_up.caught_up(5.0))
    await asyncio.sleep(0.1)
    leaving.cancel()

    assert await impatient is False
    applied.offsets = dict(written)
    assert await patient is True
    assert leaving.cancelled()


async def test_positions_kept_in_the_database_are_read_off_the_event_loop(
        kafka_bootstrap: str, topic: str, written: dict[int, int]) -> None:
    applied = Applied(in_memory=False)
    applied.offsets = dict(written)
    catch_up = LogCatchUp(applied, topic, kafka_bootstrap)
    try:
        assert await catch_up.caught_up(5.0) is True
    finally:
        await catch_up.stop()

    assert applied.asked_from and threading.get_ident() not in applied.asked_from


async def test_a_broker_that_does_not_answer_is_not_caught_up_within_the_timeout() -> None:
    catch_up = LogCatchUp(Applied(), "afflux.partners.v1", f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    try:
        assert await catch_up.caught_up(1.0) is False
    finally:
        await catch_up.stop()
    assert time.monotonic() - started < 3.0


async def test_a_broker_that_comes_back_is_caught_up_with_again() -> None:
    """Nobody answers at the address at first; once a broker does, a catch-up works."""
    port = free_port()
    catch_up = LogCatchUp(Applied(), "test.catchup.back", f"127.0.0.1:{port}")
    broker = EmbeddedBroker(port=port)
    try:
        assert await catch_up.caught_up(0.5) is False
        broker.start()
        await ensure_topics(broker.bootstrap_servers, [("test.catchup.back", PARTITIONS)])

        assert await catch_up.caught_up(10.0) is True
    finally:
        await catch_up.stop()
        broker.stop()


async def test_a_stream_of_callers_shares_one_request_per_interval(
        kafka_bootstrap: str, topic: str, written: dict[int, int]) -> None:
    applied = Applied()
    applied.offsets = dict(written)
    catch_up = LogCatchUp(applied, topic, kafka_bootstrap, interval=0.1)
    try:
        assert await catch_up.caught_up(5.0)  # connected, metadata known
        await asyncio.sleep(0.1)
        sent = counting_requests(catch_up)
        started = time.monotonic()
        callers = []
        for _ in range(100):  # one caller every 5 ms for half a second
            callers.append(asyncio.create_task(catch_up.caught_up(5.0)))
            await asyncio.sleep(0.005)

        assert await asyncio.gather(*callers) == [True] * 100
        # a request at the start and then one per 0.1 s at most
        assert 2 <= len(sent) <= (time.monotonic() - started) / 0.1 + 1
    finally:
        await catch_up.stop()
