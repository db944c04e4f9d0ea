"""The AsyncAPI 3 document of the Afflux log, from the operations the services run.

Each ``Operation`` is one subscriber (``receive``: a service's consumer, per topic) or
one publisher (``send``: a service's outbox relay or producer) with the events it takes
or puts on the log. The services declare them (``afflux_plumbing.wiring``) and
``afflux_infra.asyncapi`` hands them here: this package knows no service. faststream
(the stack's subscriber framework) builds the document from a ``KafkaBroker``, never
started, on which every operation is declared as a subscriber or a publisher; this
module then shapes it the way a subscriber reads it best:

- one channel per topic (its address is the topic name), listing each event some
  service sends or receives on it as a message named after the event type;
- one operation per service's consumer group and topic (``receive``, with its Kafka
  group id, or its client id for a replica outside any group) and per publisher
  (``send``), each listing its events;
- payloads are the very envelope schemas of ``contracts/schemas/*.json``
  (serialization mode: money is a decimal string, never a number), their
  ``$defs`` lifted into ``components/schemas``;
- every message says its headers (``event_type``, ``event_id``, ``content-type``,
  and W3C ``traceparent`` when tracing is on), its Kafka key and that the
  correlation id travels in the envelope.

Needs the ``asyncapi`` extra (faststream).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any, Literal

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES, Event
from afflux_contracts.export import schema_of
from afflux_contracts.topics import ALL_TOPICS, Topic

ASYNCAPI_PATH = Path(__file__).resolve().parents[2] / "asyncapi.json"
VERSION = "1.0.0"
DESCRIPTION = re.sub(r"\s+", " ", """
Every fact of the Afflux partner performance-marketing backend, as events on Kafka topics,
with the operations the services run on them: each service's consumer groups (receive) and
publishers (send). Each record's value is a JSON envelope (event_id: UUIDv7, the idempotency
key; event_type; schema_version; occurred_at; producer; correlation_id; causation_id;
payload). Delivery is at least once: a subscriber applies each event_id once. Money is a
decimal string with an ISO 4217 currency. Fields are only ever added, with defaults: ignore
fields you do not know. Topics keep events forever; `<topic>.dlq` holds records a consumer
could not apply.""").strip()

HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event_type": {"type": "string", "description": "The envelope's event_type (route without parsing)"},
        "event_id": {"type": "string", "format": "uuid", "description": "The envelope's event_id"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string",
                        "description": "W3C trace context of the request that caused the event (optional)"},
    },
    "required": ["event_type", "event_id"],
}
BINDING_VERSION = "0.5.0"


@dataclass(frozen=True)
class Operation:
    """One subscriber or publisher a service runs on one topic, as the document shows it."""

    service: str
    name: str
    """A consumer's group (the suffix of its group id) or a publisher's name (``relay``)."""
    action: Literal["receive", "send"]
    topic: Topic
    events: tuple[type[Event], ...]
    group_id: str | None = None
    """A consumer's Kafka group id; None for a replica reading every partition outside any
    group (``client_id`` names it then) and for a publisher."""
    client_id: str | None = None

    @property
    def id(self) -> str:
        """``attribution_tracking_receive_tracking``: service, name, action, topic."""
        short = self.topic.name.removeprefix("afflux.").split(".")[0]
        return re.sub(r"[^A-Za-z0-9_-]", "_", f"{self.service}_{self.name}_{self.action}_{short}")

    @property
    def event_names(self) -> list[str]:
        return sorted(event.event_type for event in self.events)

    @property
    def title(self) -> str:
        if self.action == "send":
            return f"{self.service} ({self.name}) publishes on {self.topic.name}"
        who = f"group {self.group_id}" if self.group_id else f"every partition, client {self.client_id}"
        return f"{self.service} ({who}) subscribes to {self.topic.name}"


def channel_id(topic: Topic) -> str:
    """AsyncAPI ids allow letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic.name)


def _envelope_of(events: Iterable[type[Event]]) -> Any:
    """``Envelope[A] | Envelope[B] | ...``: what an operation's declared handler takes or its
    publisher sends."""
    return reduce(operator.or_, [Envelope[event] for event in events])  # type: ignore[valid-type]


def _declared_handler(envelope: Any) -> Callable[..., Any]:
    """A handler never called: faststream reads the message type from its annotation."""

    async def declared(envelope: Any) -> None:
        """Never called: the broker is never started; only its annotation is read."""

    declared.__annotations__ = {"envelope": envelope, "return": None}
    return declared


def faststream_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """faststream's AsyncAPI 3 document of a broker on which every operation is declared:
    a subscriber per ``receive`` (in its group), a publisher per ``send``."""
    broker = KafkaBroker(
        "localhost:9092",
        description="Set KAFKA_BOOTSTRAP_SERVERS to your cluster's brokers (see the README).")
    for op in operations:
        envelope = _envelope_of(op.events)
        if op.action == "receive":
            broker.subscriber(op.topic.name, group_id=op.group_id, title=op.id,
                              description=op.title)(_declared_handler(envelope))
        else:
            broker.publisher(op.topic.name, title=op.id, schema=envelope, description=op.title)
    spec = AsyncAPI(broker, title="Afflux events", version=VERSION, description=DESCRIPTION,
                    schema_version="3.0.0").to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    return document


def _lift_refs(node: Any) -> Any:
    """Point ``#/$defs/X`` references at ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {key: (value.replace("#/$defs/", "#/components/schemas/") if key == "$ref"
                      else _lift_refs(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_lift_refs(item) for item in node]
    return node


def _envelope_schemas(names: Iterable[str]) -> dict[str, Any]:
    """``<Event>Envelope`` and every shared definition, from the JSON Schema export."""
    schemas: dict[str, Any] = {}
    for name in sorted(names):
        schema = schema_of(name)
        for def_name, definition in schema.pop("$defs", {}).items():
            lifted = _lift_refs(definition)
            if schemas.setdefault(def_name, lifted) != lifted:
                raise ValueError(f"two contract types are both named {def_name}: rename one")
        schema.pop("$id", None)
        schemas[f"{name}Envelope"] = _lift_refs(schema)
    return schemas


def document(operations: Iterable[Operation]) -> dict[str, Any]:
    """The published document: faststream's, grouped by topic, with the contract's schemas."""
    ordered = sorted(operations, key=lambda op: (op.service, op.action, op.name, op.topic.name))
    built = faststream_document(ordered)
    server = next(iter(built["servers"]))
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        names = sorted({name for op in ordered if op.topic == topic for name in op.event_names})
        if names:
            channels[channel_id(topic)] = _channel(topic, names, server)
            messages.update((name, _message(topic, name)) for name in names)
    return {
        "asyncapi": built["asyncapi"],
        "info": built["info"],
        "defaultContentType": "application/json",
        "servers": built["servers"],
        "channels": channels,
        "operations": {op.id: _operation(op, built) for op in ordered},
        "components": {"messages": messages, "schemas": _envelope_schemas(messages)},
    }


def _channel(topic: Topic, names: list[str], server: str) -> dict[str, Any]:
    return {
        "address": topic.name,
        "title": topic.name,
        "description": f"Key: {topic.key_rule}. {topic.partitions} partitions by default; "
                       f"order holds per key only. Dead letters: {topic.dlq}.",
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions,
                               "bindingVersion": BINDING_VERSION}},
    }


def _operation(op: Operation, built: dict[str, Any]) -> dict[str, Any]:
    """``op`` as faststream declared it (its action, on its topic), pointing at the
    channel's per-event messages."""
    declared = built["operations"][op.id]
    address = built["channels"][declared["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
    if (declared["action"], address) != (op.action, op.topic.name):
        raise ValueError(f"faststream declared {op.id} as {declared['action']} on {address}")
    cid = channel_id(op.topic)
    operation: dict[str, Any] = {
        "action": declared["action"],
        "title": op.title,
        "channel": {"$ref": f"#/channels/{cid}"},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{name}"} for name in op.event_names],
    }
    ids = {"groupId": op.group_id, "clientId": op.client_id}
    binding = {key: {"type": "string", "enum": [value]} for key, value in ids.items() if value}
    if binding:
        operation["bindings"] = {"kafka": {**binding, "bindingVersion": BINDING_VERSION}}
    return operation


def _message(topic: Topic, name: str) -> dict[str, Any]:
    event = EVENT_TYPES[name]
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "contentType": "application/json",
        "headers": HEADERS_SCHEMA,
        "correlationId": {"location": "$message.payload#/correlation_id"},
        "payload": {"$ref": f"#/components/schemas/{name}Envelope"},
        "bindings": {"kafka": {"key": {"type": "string", "description": topic.key_rule},
                               "bindingVersion": BINDING_VERSION}},
        "x-schema-version": event.schema_version,
    }
    summary = (event.__doc__ or "").strip().split("\n\n")[0]
    if summary:
        message["summary"] = " ".join(summary.split())
    return message


def rendered(operations: Iterable[Operation]) -> str:
    """The file's text, exactly as ``make schemas`` writes it."""
    return json.dumps(document(operations), indent=2) + "\n"
