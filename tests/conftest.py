"""Cross-service fixtures: the four services as real processes on real infrastructure."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure, broker_of_its_own


@pytest.fixture(scope="module")
def bootstrap_for_platform(infra: SessionInfrastructure) -> Iterator[str]:
    """A broker whose topics hold only this module's events (see ``broker_of_its_own``)."""
    with broker_of_its_own(infra) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def platform(infra: SessionInfrastructure, bootstrap_for_platform: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Partners, tracking, attribution and payouts, each its own OS process, on free ports,
    with a database and consumer groups of their own."""
    database_url = infra.new_database()
    infrastructure = Infrastructure(database_url=database_url,
                                    bootstrap_servers=bootstrap_for_platform, kind=infra.server.kind)
    running = Platform(
        infrastructure,
        ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=tmp_path_factory.mktemp("platform-logs"),
        extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": f"e2e-{secrets.token_hex(4)}"},
    )
    try:
        yield running.start()
    finally:
        running.stop()
        infra.retire(database_url)
