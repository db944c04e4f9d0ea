"""``afflux lag``, ``afflux topics`` and ``afflux status``: what an operator looks at first.

Exit codes, for scripts and probes: 0 all well; 1 something is wrong (a service not
ready, a consumer lagging past ``--max-lag``, a topic missing, the broker or the
database unreachable); 2 the command cannot run (a setting is missing).
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from psycopg import Error as DatabaseError

from afflux_infra import health, lag, topics_report
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.scale import parse_instances

DEFAULT_MAX_LAG = 1000


def register(app: typer.Typer) -> None:
    """Add ``lag``, ``topics`` and ``status`` to the ``afflux`` command."""
    app.command("lag")(lag_command)
    app.command("topics")(topics_command)
    app.command("status")(status_command)


def _setting(name: str, command: str) -> str:
    value = os.environ.get(name)
    if not value:
        typer.echo(f"afflux {command}: set {name}", err=True)
        raise typer.Exit(2)
    return value


def _measure_lag(command: str) -> list[lag.PartitionLag]:
    database_url = _setting("DATABASE_URL", command)
    bootstrap = _setting("KAFKA_BOOTSTRAP_SERVERS", command)
    try:
        return asyncio.run(lag.measure(database_url, bootstrap))
    except (KafkaError, DatabaseError, OSError) as error:
        typer.echo(f"afflux {command}: cannot measure lag: {error}", err=True)
        raise typer.Exit(1) from error


def _print_lag(rows: list[lag.PartitionLag], max_lag: int, everything: bool) -> None:
    typer.echo(f"{'CONSUMER':<34} {'TOPIC':<26} {'PART':>4} {'APPLIED':>10} {'END':>10} {'LAG':>8}")
    for row in rows:
        if not everything and row.lag == 0:
            continue
        applied = "-" if row.applied is None else str(row.applied)
        flag = "  << over --max-lag" if row.lag > max_lag else ""
        typer.echo(f"{row.consumer:<34} {row.topic:<26} {row.partition:>4} {applied:>10} "
                   f"{row.end:>10} {row.lag:>8}{flag}")


def lag_command(
    max_lag: int = typer.Option(DEFAULT_MAX_LAG, help="Exit 1 when a partition lags more than this."),
    all_partitions: bool = typer.Option(False, "--all", help="Also list partitions with no lag."),
) -> None:
    """Per consumer, topic and partition: last offset applied (from PostgreSQL), the log's
    end offset (from the broker) and the records in between."""
    rows = _measure_lag("lag")
    _print_lag(rows, max_lag, all_partitions)
    total, worst = sum(r.lag for r in rows), max((r.lag for r in rows), default=0)
    typer.echo(f"\n{len(rows)} partitions, {total} records behind in all, worst partition {worst}")
    if worst > max_lag:
        raise typer.Exit(1)


def topics_command() -> None:
    """Each contract topic and its DLQ: partitions (wanted), replicas and records."""
    bootstrap = _setting("KAFKA_BOOTSTRAP_SERVERS", "topics")
    try:
        states = asyncio.run(topics_report.topic_states(bootstrap))
    except (KafkaError, OSError) as error:
        typer.echo(f"afflux topics: cannot reach the broker: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"{'TOPIC':<30} {'PARTITIONS':>10} {'REPLICAS':>8} {'RECORDS':>10}")
    for state in states:
        replicas = "?" if state.replicas is None else str(state.replicas)
        partitions = f"{state.partitions}" if state.exists else "MISSING"
        note = "  << dead letters to look at (afflux dlq list)" if state.is_dlq and state.records else ""
        typer.echo(f"{state.name:<30} {partitions:>10} {replicas:>8} {state.records:>10}{note}")
    missing = [s.name for s in states if not s.exists]
    if missing:
        typer.echo(f"\nmissing: {', '.join(missing)} (`afflux run` or the services create them)", err=True)
        raise typer.Exit(1)


def status_command(
    max_lag: int = typer.Option(DEFAULT_MAX_LAG, help="Exit 1 when a partition lags more than this."),
    url: Annotated[list[str] | None, typer.Option(
        help="NAME=URL of a service (repeatable); default: AFFLUX_<NAME>_URL, else 127.0.0.1 on its port.",
    )] = None,
    instances: str = typer.Option("", help="As given to `afflux run --instances`: check every instance."),
) -> None:
    """Every service's health (/healthz, /readyz) and the consumers' lag."""
    overrides = dict(item.split("=", 1) for item in url or () if "=" in item)
    try:
        counts = parse_instances(instances, list(DEFAULT_PORTS))
        urls = health.with_instances(health.service_urls(overrides), counts)
    except ValueError as error:
        typer.echo(f"afflux status: {error}", err=True)
        raise typer.Exit(2) from error
    services = asyncio.run(health.check_all(urls))
    typer.echo(f"{'SERVICE':<14} {'STATE':<10} URL")
    for service in services:
        detail = f"  ({service.detail})" if service.detail else ""
        typer.echo(f"{service.name:<14} {service.state:<10} {service.url}{detail}")
    rows = _measure_lag("status")
    worst = max(rows, key=lambda r: r.lag, default=None)
    behind = sum(r.lag for r in rows)
    typer.echo(f"\nlag: {behind} records behind over {len(rows)} partitions"
               + (f"; worst {worst.consumer} {worst.topic}#{worst.partition}: {worst.lag}"
                  if worst and worst.lag else ""))
    unhealthy = [s.name for s in services if not s.ok]
    lagging = worst is not None and worst.lag > max_lag
    if unhealthy or lagging:
        problems = ([f"not ready: {', '.join(unhealthy)}"] if unhealthy else []) + (
            [f"lag over {max_lag}"] if lagging else [])
        typer.echo(f"UNHEALTHY: {'; '.join(problems)}", err=True)
        raise typer.Exit(1)
    typer.echo("OK")
