"""Several instances of a service: ``afflux run --instances attribution=3,payouts=2``.

Instances of a service share its consumer groups, so Kafka splits each topic's
partitions among them. Partitions bound the parallelism: on a topic of four
partitions a fifth instance gets none and idles as a hot standby. They
share the service's PostgreSQL schema, where the positions are stored with the
changes, so a rebalance hands a partition over without applying a record twice.
One relay at a time holds the outbox lock.

Tracking is the exception: each instance keeps an in-memory routing view fed by
its own replica of the partners log (every partition, outside any group), so
each needs positions of its own: instance N gets the schema ``tracking_N``, and
all learn how many they are (``AFFLUX_TRACKING_INSTANCES``, for their share of hard
click caps).
"""

from __future__ import annotations

PORT_STEP = 100
"""Instance N of a service listens on its port + (N - 1) * 100 (attribution: 8003, 8103, 8203)."""


def instance_port(port: int, number: int) -> int:
    return port + (number - 1) * PORT_STEP


def instance_env(name: str, number: int, count: int) -> dict[str, str]:
    """What instance ``number`` of ``count`` of service ``name`` needs beyond the shared settings."""
    if name != "tracking":
        return {}
    env = {"AFFLUX_TRACKING_INSTANCES": str(count)}
    if number > 1:
        env["AFFLUX_TRACKING_SCHEMA"] = f"tracking_{number}"
    return env


def parse_instances(value: str, services: list[str]) -> dict[str, int]:
    """``attribution=3,payouts=2`` -> {"attribution": 3, "payouts": 2}; a clear error otherwise."""
    found: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, count = item.partition("=")
        if name not in services:
            raise ValueError(f"--instances: no service {name!r} (services: {', '.join(services)})")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--instances: {item!r} needs a count of at least 1, like {name}=2")
        found[name] = int(count)
    return found
