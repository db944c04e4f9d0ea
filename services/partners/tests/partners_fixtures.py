"""Helpers for the partners service's integration tests: request bodies, the error
shape, and reading what the relay put on ``afflux.partners.v1``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from afflux_contracts import PARTNERS, Envelope, Event
from afflux_infra.testing import RunningService, read_envelopes
from afflux_partners.entrypoints.main import build
from afflux_partners.settings import PartnersSettings

ADMIN_TOKEN = "partners-test-admin-token"
TRACKING_URL = "https://track.example"


class RunningPartners(RunningService[PartnersSettings]):
    """The partners service as its tests run it, with the test admin token."""

    def __init__(
        self, database_url: str, kafka_bootstrap: str, group_prefix: str = "", **settings: Any
    ) -> None:
        super().__init__(PartnersSettings, build, database_url, kafka_bootstrap, group_prefix,
                         **{"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, **settings})


@dataclass(frozen=True)
class Published:
    """One record of the partners topic: its Kafka key and its envelope."""

    key: str
    envelope: Envelope[Event]


def partner_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Ann's Deals", "email": "ann@deals.example", **overrides}


def offer_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Running shoes",
        "destination_url": "https://shop.example/land?tid={transaction_id}&s1={sub1}",
        "currency": "USD",
        "payout": {"type": "cpa", "amount": "12.50"},
        **overrides,
    }


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    """The shared 4xx shape, with the expected code and field."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["message"]
    assert (error["code"], error["field"]) == (code, field), error


async def read_partners_topic(bootstrap: str) -> list[Published]:
    """Every record now on the partners topic, all partitions from the beginning (other
    tests share the broker: callers filter by their own ids)."""
    return [Published(r.key.decode() if r.key else "", envelope)
            for r, envelope in await read_envelopes(bootstrap, PARTNERS.name, PARTNERS.partitions)]


async def published_until(
    bootstrap: str, mine: Callable[[Envelope[Event]], bool], done: Callable[[list[Published]], bool],
    timeout: float = 20.0,
) -> list[Published]:
    """Read the topic until the records that are ``mine`` satisfy ``done``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        records = [r for r in await read_partners_topic(bootstrap) if mine(r.envelope)]
        if done(records):
            return records
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not published within {timeout}s; got {[r.envelope for r in records]}")
        await asyncio.sleep(0.2)
