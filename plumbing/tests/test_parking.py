"""A record waiting for a fact holds back only its own partition, for a bounded time;
then it is dead-lettered, and a redrive applies it once."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

from aiokafka import AIOKafkaProducer
from tally import Roster, partner_created
from test_consumer import running

from afflux_contracts import encode
from afflux_infra.dlq import dead_letters
from afflux_infra.provision import ensure_topics
from afflux_infra.testing import eventually
from afflux_plumbing.consume import RetryLater, TrackedConsumer
from afflux_plumbing.publish import Publisher


def consumer(roster: Roster, topic: str, bootstrap: str, publisher: Publisher, group: str,
             limit: float) -> TrackedConsumer:
    return TrackedConsumer(store=roster, topics=[topic], bootstrap_servers=bootstrap,
                           group_id=group, dead_letters=publisher, retry_later_limit=limit)


async def send_to(producer: AIOKafkaProducer, topic: str, partition: int, name: str) -> None:
    await producer.send_and_wait(topic, encode(partner_created(name)), key=name.encode(), partition=partition)


async def test_a_parked_record_holds_back_its_own_partition_and_no_other(
    roster: Roster, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    topic = f"test.plumbing.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(topic, 2), (f"{topic}.dlq", 2)])
    roster.refusals["waits"] = RetryLater("its offer has not arrived")
    await send_to(raw_producer, topic, 0, "waits")
    await send_to(raw_producer, topic, 0, "behind")
    await send_to(raw_producer, topic, 1, "other")
    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=120)):
        await eventually(lambda: roster.stored_offset(topic, 1) == 0)
        await send_to(raw_producer, topic, 1, "later")  # arrives while "waits" is parked
        await eventually(lambda: roster.stored_offset(topic, 1) == 1)
        assert roster.stored_offset(topic, 0) is None  # nothing after "waits" jumped it
        assert roster.counts() == {"other": 1, "later": 1}

        del roster.refusals["waits"]
        await eventually(lambda: roster.stored_offset(topic, 0) == 1)
    assert roster.counts() == {"other": 1, "later": 1, "waits": 1, "behind": 1}
    assert roster.arrivals() == [("behind", 0), ("later", 0), ("other", 0), ("waits", 0)]


async def afflux(*args: str, bootstrap: str, database: str | None = None) -> str:
    """Run the ``afflux`` command line as an operator would; return what it printed."""
    databases = {"DATABASE_URL": database} if database is not None else {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "afflux_infra.cli", *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **databases},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_a_record_waiting_past_the_limit_is_dead_lettered_then_redriven_and_applied_once(
    roster: Roster, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["late"] = RetryLater("its offer has not arrived")
    await send_to(raw_producer, topic, 0, "late")
    await send_to(raw_producer, topic, 0, "next")
    async with running(consumer(roster, topic, kafka_bootstrap, publisher, group_prefix, limit=1.5)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 1)
        assert roster.counts() == {"next": 1}

        listed = await afflux("dlq", "list", topic, bootstrap=kafka_bootstrap)
        assert listed.splitlines() == [
            f"0\t0\t{topic}#0@0\tretry later: still waiting after 1.5s: its offer has not arrived"]
        shown = await afflux("dlq", "show", topic, "0", "0", bootstrap=kafka_bootstrap)
        assert '"name":"late"' in shown

        del roster.refusals["late"]  # what it waited for exists now
        for _ in range(2):  # a second redrive is a duplicate, dropped by event_id
            redriven = await afflux("dlq", "redrive", topic, "0", "0", bootstrap=kafka_bootstrap)
            assert redriven.startswith(f"redriven {topic}.dlq#0@0 to {topic}#0@")
        await eventually(lambda: roster.stored_offset(topic, 0) == 3)
    assert roster.counts() == {"next": 1, "late": 1}
    assert len(await dead_letters(kafka_bootstrap, topic)) == 1
