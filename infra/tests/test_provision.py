"""Topic provisioning asks for the replication the deployment can give, or refuses."""

from __future__ import annotations

import secrets

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from afflux_infra.provision import REPLICATION_ENV, NotEnoughBrokers, ensure_topics, replication_factor


def test_replication_defaults_to_three_for_a_real_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLICATION_ENV, raising=False)
    assert replication_factor() == 3
    monkeypatch.setenv(REPLICATION_ENV, "5")
    assert replication_factor() == 5


async def test_more_replicas_than_brokers_fails_clearly_and_creates_nothing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REPLICATION_ENV, "3")
    name = f"test.provision.{secrets.token_hex(4)}"
    with pytest.raises(NotEnoughBrokers, match=rf"{REPLICATION_ENV}=3 but the cluster .* has 1 broker"):
        await ensure_topics(kafka_bootstrap, [(name, 1)])
    assert name not in await _topics(kafka_bootstrap)


async def test_topics_get_the_replication_asked_for_and_matching_min_insync_replicas(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REPLICATION_ENV, "1")
    name = f"test.provision.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, [(name, 2)])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([name])
        assert [len(p["replicas"]) for p in described["partitions"]] == [1, 1]
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
    finally:
        await admin.close()
    assert configs["min.insync.replicas"] == "1"
    assert configs["retention.ms"] == "-1"


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()
