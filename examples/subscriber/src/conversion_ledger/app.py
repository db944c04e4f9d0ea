"""The faststream application: subscribe to ``afflux.attribution.v1``, keep a ledger.

Run it with ``python -m conversion_ledger`` or ``faststream run --factory
conversion_ledger.app:create_app`` (settings from the environment, below), or build
one in code with ``build``. Each record's value is an
Afflux envelope; ``afflux_contracts.decode`` validates it and returns the typed
event. A record this version of the contracts cannot read (an event type added
after it, say) is logged and skipped: upgrade the contracts package to see it.
The offset is committed only after the ledger has the event (``AckPolicy.ACK``),
so a crash re-delivers, and the ledger drops what it already applied.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from afflux_contracts import ATTRIBUTION, DecodeError, decode
from conversion_ledger.ledger import Ledger

log = logging.getLogger("conversion_ledger")


@dataclass
class Subscriber:
    """The pieces a test (or a host process) holds on to."""

    app: FastStream
    broker: KafkaBroker
    ledger: Ledger


def build(bootstrap_servers: str, database: str, group_id: str = "conversion-ledger") -> Subscriber:
    """A subscriber of ``afflux.attribution.v1`` in consumer group ``group_id`` (its
    instances share the topic's partitions), reading from the start of the log the
    first time, keeping its ledger in the SQLite file ``database``."""
    broker = KafkaBroker(bootstrap_servers, client_id=group_id)
    ledger = Ledger(database)

    @broker.subscriber(ATTRIBUTION.name, group_id=group_id, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.ACK)
    async def on_attribution_event(message: KafkaMessage) -> None:
        try:
            envelope = decode(message.body)
        except DecodeError as error:
            log.warning("skipping a record this subscriber cannot read: %s", error)
            return
        if ledger.apply(envelope):
            log.info("applied %s %s", envelope.event_type, envelope.event_id)
        else:
            log.info("duplicate %s %s dropped", envelope.event_type, envelope.event_id)

    app = FastStream(broker)
    app.on_shutdown(ledger.close)
    return Subscriber(app, broker, ledger)


def from_environment() -> Subscriber:
    """``KAFKA_BOOTSTRAP_SERVERS``, ``LEDGER_DATABASE`` (a SQLite file) and ``LEDGER_GROUP``."""
    return build(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
                 os.environ.get("LEDGER_DATABASE", "ledger.sqlite3"),
                 os.environ.get("LEDGER_GROUP", "conversion-ledger"))


def create_app() -> FastStream:
    """The factory ``faststream run --factory conversion_ledger.app:create_app`` calls."""
    return from_environment().app
