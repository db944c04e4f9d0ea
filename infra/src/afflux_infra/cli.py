"""``afflux``: the operator's command line. ``afflux run`` is what ``make run`` does."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import ExitStack
from types import FrameType
from urllib.parse import quote

import typer
from aiokafka.errors import KafkaError

from afflux_infra import blocked, dlq
from afflux_infra.ops_cli import register as register_ops
from afflux_infra.platform import Platform, start_infrastructure
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.provision import afflux_topics, ensure_topics
from afflux_infra.scale import parse_instances
from afflux_payouts.entrypoints.cli import app as payouts_cli
from afflux_plumbing import blocking

app = typer.Typer(help="Afflux: partner performance-marketing backend.", no_args_is_help=True)


class _Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@app.callback()
def main() -> None:
    """Afflux operator commands."""


@app.command()
def run(
    broker_port: int = typer.Option(0, help="Port of the embedded broker (0: any free port)."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for every service to be healthy."),
    instances: str = typer.Option("", help="Processes per service, e.g. attribution=3,payouts=2 "
                                  "(instance N listens on the service's port + 100*(N-1))."),
) -> None:
    """Run the whole platform: PostgreSQL and Kafka from DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS,
    or embedded ones when unset, and the six services as processes. A service that dies is
    restarted (with backoff); Ctrl-C, or a service that keeps dying, stops it all."""
    try:
        counts = parse_instances(instances, list(DEFAULT_PORTS))
    except ValueError as error:
        typer.echo(f"afflux: {error}", err=True)
        raise typer.Exit(2) from error
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    with ExitStack() as stack:
        try:
            typer.echo("starting infrastructure ...")
            infrastructure = start_infrastructure(stack, broker_port=broker_port)
            ports = {name: int(os.environ.get(f"AFFLUX_{name.upper()}_PORT", port))
                     for name, port in DEFAULT_PORTS.items()}
            token = os.environ.get("AFFLUX_ADMIN_TOKEN") or Platform(infrastructure).admin_token
            platform = Platform(infrastructure, admin_token=token, ports=ports,
                                instances=counts)
            stack.callback(platform.stop)
            typer.echo("starting services ...")
            platform.start(timeout=timeout, path="/healthz")
            _print_banner(platform)
            _watch(platform)
        except (KeyboardInterrupt, _Stop):
            # Launchers (uv run, make) pass the same Ctrl-C on to us again: a second
            # interrupt must not cut the shutdown short and leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            typer.echo("\nstopping ...")
        except (RuntimeError, TimeoutError) as error:
            typer.echo(f"afflux: {error}", err=True)
            raise typer.Exit(1) from error
    typer.echo("stopped.")


@app.command()
def provision() -> None:
    """Create the Afflux topics and their DLQs on KAFKA_BOOTSTRAP_SERVERS where missing
    (AFFLUX_REPLICATION_FACTOR replicas, 3 unless set; retention forever). What a
    deployment runs once before the services (the compose file's and Kubernetes' job)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        typer.echo("afflux provision: set KAFKA_BOOTSTRAP_SERVERS to the cluster's brokers", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(ensure_topics(bootstrap, timeout=120.0))
    except (KafkaError, OSError, RuntimeError, ValueError) as error:
        typer.echo(f"afflux provision: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"afflux provision: {len(afflux_topics())} topics present on {bootstrap}")


def _print_banner(platform: Platform) -> None:
    infra = platform.infrastructure
    typer.echo("")
    typer.echo(f"Afflux is running ({infra.kind} infrastructure). Ctrl-C stops everything.")
    for name in platform.services:
        for number, service in enumerate(platform.instances_of(name), start=1):
            label = name if number == 1 else f"{name}#{number}"
            typer.echo(f"  {label:<13} {service.url}   (docs: {service.url}/docs)")
    typer.echo(f"  {'postgresql':<12} {infra.database_url}")
    typer.echo(f"  {'kafka':<12} {infra.bootstrap_servers}")
    if "notifications" in platform.services and not os.environ.get("AFFLUX_SMTP_URL"):
        typer.echo(f"  {'mail':<12} kept, not delivered (no AFFLUX_SMTP_URL): "
                   f"GET {platform.url('notifications')}/v1/mail")
    typer.echo(f"\n  admin token  {platform.admin_token}")
    typer.echo(f"  export AFFLUX_ADMIN_TOKEN='{platform.admin_token}'\n")
    if "console" in platform.services:
        _print_console_sign_in(platform.services["console"].url, platform.admin_token)


def _print_console_sign_in(console: str, admin_token: str) -> None:
    """The console's address, and a link that signs the bootstrap owner in: the admin token
    rides in the link's fragment, which the sign-in page's script hands to its token form
    (a fragment never reaches a server or its logs). The owner then adds the staff."""
    typer.echo(f"  console      {console}/console")
    typer.echo("  sign in as the bootstrap owner (open it in a browser on this machine):")
    typer.echo(f"    {console}/console/signin#token={quote(admin_token, safe='')}")
    typer.echo("  then add your staff under Staff; they sign in with email and password.\n")


def _watch(platform: Platform) -> None:
    """Wait for Ctrl-C, keeping the services up: one that exits on its own is restarted
    with backoff and a line saying so (``Supervisor``), while the others and the broker
    go on. A service that keeps dying, or the embedded broker dying (the log is in its
    memory), stops the platform with a clear message."""
    supervisor = platform.supervisor(lambda line: typer.echo(f"afflux: {line}", err=True))
    while True:
        platform.infrastructure.check_broker()
        supervisor.check()
        time.sleep(0.2)


dlq_app = typer.Typer(help="Inspect and redrive dead letters (records a consumer could not apply).",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _bootstrap() -> str:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        typer.echo("afflux dlq: set KAFKA_BOOTSTRAP_SERVERS to the cluster's brokers", err=True)
        raise typer.Exit(2)
    return bootstrap


def _database() -> str:
    """Where the consumers' stores keep their held letters (``afflux dlq blocked``)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        typer.echo("afflux dlq: set DATABASE_URL to the services' database", err=True)
        raise typer.Exit(2)
    return url


@dlq_app.command("list")
def dlq_list(topic: str = typer.Argument(help="Source topic (or its .dlq), e.g. afflux.tracking.v1")) -> None:
    """One line per dead letter: its DLQ position, where it came from, and why."""
    try:
        letters = asyncio.run(dlq.dead_letters(_bootstrap(), topic))
    except LookupError as error:
        typer.echo(f"afflux dlq: {error}", err=True)
        raise typer.Exit(1) from error
    for letter in letters:
        typer.echo(f"{letter.record.partition}\t{letter.record.offset}\t{letter.source}\t{letter.reason}")


@dlq_app.command("show")
def dlq_show(topic: str, partition: int, offset: int) -> None:
    """One dead letter in full: headers and value."""
    letter = _letter(topic, partition, offset)
    typer.echo(f"position: {letter.position}\nsource:   {letter.source}\nreason:   {letter.reason}")
    for key, value in letter.record.headers:
        typer.echo(f"header {key}: {value.decode(errors='replace')}")
    typer.echo((letter.record.value or b"").decode(errors="replace"))


@dlq_app.command("redrive")
def dlq_redrive(
    topic: str,
    partition: int | None = typer.Argument(None, help="The dead letter's DLQ partition (or --key)."),
    offset: int | None = typer.Argument(None, help="The dead letter's DLQ offset (or --key)."),
    key: str | None = typer.Option(None, help="Every letter the consumers hold for this key, in its order."),
) -> None:
    """Re-publish dead letters' original bytes to their source topic (same event_id: applied
    once). A key's letters must go back together and in order (``--key``): a lone letter
    that is not its key's first held one goes behind it again."""
    if key is not None and partition is None:
        letters = _held_for_key(topic, key.encode())
    elif key is None and partition is not None and offset is not None:
        letters = [_letter(topic, partition, offset)]
    else:
        typer.echo("afflux dlq redrive: name a letter (PARTITION OFFSET) or a key (--key)", err=True)
        raise typer.Exit(2)
    for letter, metadata in zip(letters, asyncio.run(dlq.redrive_all(_bootstrap(), letters)), strict=True):
        typer.echo(f"redriven {letter.position} to {metadata.topic}#{metadata.partition}@{metadata.offset}")


@dlq_app.command("blocked")
def dlq_blocked(topic: str | None = typer.Argument(None, help="Only this source topic.")) -> None:
    """The keys whose records wait behind a dead letter: per consumer store, each held
    letter in its key's order (the first is the one the others wait for)."""
    held = blocked.held_letters(_database(), topic.removesuffix(dlq.DLQ_SUFFIX) if topic else None)
    for letter in held:
        typer.echo(f"{letter.store}\t{letter.topic}\t{letter.key_text}\t{letter.source}\t{letter.dead_letter}"
                   f"\t{letter.letters}\t{letter.reason}")


@dlq_app.command("discard")
def dlq_discard(
    topic: str, partition: int, offset: int,
    store: str | None = typer.Option(None, help="Only in this store (schema.store, as `blocked` shows)."),
) -> None:
    """Stop holding a dead letter: it will not be applied, and its key's later records no
    longer wait for it (those held behind it stay on the DLQ until redriven with --key)."""
    letter = _letter(topic, partition, offset)
    if letter.record.key is None:
        typer.echo(f"afflux dlq: {letter.position} has no key: it holds nothing back", err=True)
        raise typer.Exit(1)
    database = _database()
    source = letter.source_topic
    gone = blocked.discard(database, source, letter.record.key, blocking.digest(letter.record.value), store)
    if not gone:
        typer.echo(f"afflux dlq: no consumer holds {letter.position}", err=True)
        raise typer.Exit(1)
    for held in gone:
        still = [h for h in blocked.held_letters(database, source, held.key) if h.store == held.store]
        state = f"still waits for {still[0].source}" if still else "free"
        typer.echo(f"discarded {held.source} in {held.store}: key {held.key_text!r} {state}")


def _held_for_key(topic: str, key: bytes) -> list[dlq.DeadLetter]:
    try:
        return asyncio.run(dlq.held_for_key(_bootstrap(), _database(), topic, key))
    except LookupError as error:
        typer.echo(f"afflux dlq: {error}", err=True)
        raise typer.Exit(1) from error


def _letter(topic: str, partition: int, offset: int) -> dlq.DeadLetter:
    try:
        return asyncio.run(dlq.dead_letter(_bootstrap(), topic, partition, offset))
    except LookupError as error:
        typer.echo(f"afflux dlq: {error}", err=True)
        raise typer.Exit(1) from error


app.add_typer(payouts_cli)  # payouts' own commands: replay, drift, verify statement, what-if
register_ops(app)  # lag, topics, status

if __name__ == "__main__":
    app()
