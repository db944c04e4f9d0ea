"""Is every service up? ``/healthz`` (the process answers) and ``/readyz`` (its
consumers are assigned and its broker and database answer) of each service."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx

from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.scale import instance_port


@dataclass(frozen=True)
class ServiceHealth:
    """One service's answer: ``state`` is ready, not-ready (up, but its /readyz says no)
    or down (nothing answers)."""

    name: str
    url: str
    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ready"


def service_urls(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Each service's base URL: ``AFFLUX_<SERVICE>_URL``, else 127.0.0.1 on
    ``AFFLUX_<SERVICE>_PORT`` or its default port; ``overrides`` win."""
    urls = {}
    for name, port in DEFAULT_PORTS.items():
        prefix = f"AFFLUX_{name.upper()}"
        urls[name] = os.environ.get(f"{prefix}_URL") or \
            f"http://127.0.0.1:{os.environ.get(f'{prefix}_PORT', port)}"
    return {**urls, **(overrides or {})}


def with_instances(urls: dict[str, str], counts: dict[str, int]) -> dict[str, str]:
    """Add ``name#N`` for instance N of a service run with ``--instances`` (port + 100*(N-1))."""
    found = {}
    for name, url in urls.items():
        found[name] = url
        base, _, port = url.rpartition(":")
        for number in range(2, counts.get(name, 1) + 1):
            found[f"{name}#{number}"] = f"{base}:{instance_port(int(port), number)}"
    return found


async def check(client: httpx.AsyncClient, name: str, url: str) -> ServiceHealth:
    try:
        alive = await client.get(f"{url}/healthz")
        if alive.status_code != 200:
            return ServiceHealth(name, url, "down", f"/healthz answered {alive.status_code}")
        ready = await client.get(f"{url}/readyz")
    except httpx.HTTPError as error:
        return ServiceHealth(name, url, "down", type(error).__name__)
    if ready.status_code == 200:
        return ServiceHealth(name, url, "ready")
    return ServiceHealth(name, url, "not-ready", ready.text[:200].strip())


async def check_all(urls: dict[str, str], timeout: float = 3.0) -> list[ServiceHealth]:
    async with httpx.AsyncClient(timeout=timeout) as client:
        return list(await asyncio.gather(*(check(client, name, url) for name, url in urls.items())))
