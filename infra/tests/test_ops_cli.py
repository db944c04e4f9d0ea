"""``afflux lag``, ``topics`` and ``status`` read the real positions and the real broker,
and say with their exit code whether all is well."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from tally import Tally
from typer.testing import CliRunner, Result

from afflux_infra import health, lag
from afflux_infra.cli import app
from afflux_infra.embedded import free_port
from afflux_infra.provision import ensure_topics
from afflux_plumbing.eventstore import ensure_schema, postgres_env
from afflux_plumbing.positions import Position

runner = CliRunner()


async def afflux(*args: str, env: dict[str, str]) -> Result:
    """The command as an operator runs it (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


@pytest.fixture
def tally(database_url: str) -> Iterator[Tally]:
    ensure_schema(database_url, "tally")
    store = Tally(env=postgres_env(database_url, "tally"))
    yield store
    store.close()


@pytest.fixture
async def behind(tally: Tally, kafka_bootstrap: str) -> str:
    """A topic of two partitions: 5 records on 0 (3 applied), 2 on 1 (none applied)."""
    topic = f"test.ops.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(topic, 2)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in ((0, 5), (1, 2)):
            for n in range(count):
                await producer.send_and_wait(topic, b"{}", key=str(n).encode(), partition=partition)
    finally:
        await producer.stop()
    tally.record_position(Position(topic, 0, 2))
    return topic


async def test_lag_is_the_end_offset_minus_the_position_stored_in_postgresql(
        database_url: str, kafka_bootstrap: str, behind: str) -> None:
    rows = [row for row in await lag.measure(database_url, kafka_bootstrap) if row.topic == behind]
    assert [(row.consumer, row.partition, row.applied, row.end, row.lag) for row in rows] == [
        ("tally.tally", 0, 2, 5, 2), ("tally.tally", 1, None, 2, 2)]


def _env(database_url: str, kafka_bootstrap: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}


async def test_afflux_lag_exits_1_past_the_threshold_and_0_within_it(
        database_url: str, kafka_bootstrap: str, behind: str) -> None:
    env = _env(database_url, kafka_bootstrap)
    over = await afflux("lag", "--max-lag", "1", env=env)
    assert over.exit_code == 1, over.output
    assert "tally.tally" in over.output and behind in over.output and "<< over --max-lag" in over.output
    assert "4 records behind in all, worst partition 2" in over.output
    within = await afflux("lag", "--max-lag", "2", env=env)
    assert within.exit_code == 0, within.output


def test_afflux_lag_without_its_settings_exits_2() -> None:
    result = runner.invoke(app, ["lag"], env={"DATABASE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""})
    assert result.exit_code == 2
    assert "set DATABASE_URL" in result.output


def test_afflux_topics_lists_every_contract_topic_and_dlq(kafka_bootstrap: str) -> None:
    result = runner.invoke(app, ["topics"], env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.exit_code == 0, result.output
    for name in ("afflux.partners.v1", "afflux.tracking.v1", "afflux.attribution.v1.dlq"):
        assert any(line.startswith(name + " ") for line in result.output.splitlines()), name


async def test_afflux_status_exits_1_naming_the_services_that_do_not_answer(
        database_url: str, kafka_bootstrap: str, behind: str) -> None:
    urls = [f"--url={name}=http://127.0.0.1:{free_port()}" for name in health.service_urls()]
    result = await afflux("status", *urls, env=_env(database_url, kafka_bootstrap))
    assert result.exit_code == 1
    assert re.search(r"^partners +down +http://127.0.0.1:\d+", result.output, re.MULTILINE)
    assert "UNHEALTHY: not ready: partners, tracking" in result.output
    assert "lag: 4 records behind over 2 partitions" in result.output


async def test_a_service_is_ready_only_when_both_probes_answer_200() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "starting":
            return httpx.Response(503 if request.url.path == "/readyz" else 200, text="catching up")
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        ready = await health.check(client, "payouts", "http://up")
        starting = await health.check(client, "payouts", "http://starting")
    assert (ready.state, ready.ok) == ("ready", True)
    assert (starting.state, starting.detail, starting.ok) == ("not-ready", "catching up", False)


def test_status_checks_every_instance_started_with_instances() -> None:
    urls = health.with_instances({"attribution": "http://127.0.0.1:8003", "payouts": "http://127.0.0.1:8004"},
                                 {"attribution": 3})
    assert urls == {"attribution": "http://127.0.0.1:8003", "attribution#2": "http://127.0.0.1:8103",
                    "attribution#3": "http://127.0.0.1:8203", "payouts": "http://127.0.0.1:8004"}
