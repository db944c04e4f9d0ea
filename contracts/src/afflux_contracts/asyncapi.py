"""Write ``contracts/asyncapi.json``: the AsyncAPI 3 document of every Afflux topic and event.

faststream (the stack's subscriber framework) builds the document from a broker on
which every event is declared as a publisher of its topic; this module then shapes
it the way a subscriber reads it best:

- one channel per topic (its address is the topic name), listing each event on it
  as a message named after the event type;
- payloads are the very envelope schemas of ``contracts/schemas/*.json``
  (serialization mode: money is a decimal string, never a number), their
  ``$defs`` lifted into ``components/schemas``;
- every message says its headers (``event_type``, ``event_id``, ``content-type``,
  and W3C ``traceparent`` when tracing is on), its Kafka key and that the
  correlation id travels in the envelope.

Needs the ``asyncapi`` extra (faststream); ``make schemas`` writes the file and a
test fails when it differs from what the contracts say.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from afflux_contracts.envelope import Envelope
from afflux_contracts.event import EVENT_TYPES
from afflux_contracts.export import schema_of
from afflux_contracts.topics import ALL_TOPICS, Topic

ASYNCAPI_PATH = Path(__file__).resolve().parents[2] / "asyncapi.json"
VERSION = "1.0.0"
DESCRIPTION = re.sub(r"\s+", " ", """
Every fact of the Afflux partner performance-marketing backend, as events on Kafka topics.
Each record's value is a JSON envelope (event_id: UUIDv7, the idempotency key; event_type;
schema_version; occurred_at; producer; correlation_id; causation_id; payload). Delivery is
at least once: a subscriber applies each event_id once. Money is a decimal string with an
ISO 4217 currency. Fields are only ever added, with defaults: ignore fields you do not know.
Topics keep events forever; `<topic>.dlq` holds records a consumer could not apply.""").strip()

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


def channel_id(topic: Topic) -> str:
    """AsyncAPI ids allow letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic.name)


def _events_of(topic: Topic) -> list[str]:
    return sorted(name for name, event in EVENT_TYPES.items() if event.topic == topic)


def faststream_document() -> dict[str, Any]:
    """faststream's AsyncAPI 3 document: one publisher per (topic, event)."""
    broker = KafkaBroker(
        "localhost:9092",
        description="Set KAFKA_BOOTSTRAP_SERVERS to your cluster's brokers (see the README).")
    for topic in ALL_TOPICS:
        for name in _events_of(topic):
            envelope: Any = Envelope[EVENT_TYPES[name]]  # type: ignore[valid-type]
            broker.publisher(topic.name, title=name, schema=envelope,
                             description=(EVENT_TYPES[name].__doc__ or "").strip() or None)
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


def _envelope_schemas() -> dict[str, Any]:
    """``<Event>Envelope`` and every shared definition, from the JSON Schema export."""
    schemas: dict[str, Any] = {}
    for name in sorted(EVENT_TYPES):
        schema = schema_of(name)
        for def_name, definition in schema.pop("$defs", {}).items():
            lifted = _lift_refs(definition)
            if schemas.setdefault(def_name, lifted) != lifted:
                raise ValueError(f"two contract types are both named {def_name}: rename one")
        schema.pop("$id", None)
        schemas[f"{name}Envelope"] = _lift_refs(schema)
    return schemas


def document() -> dict[str, Any]:
    """The published document: faststream's, grouped by topic, with the contract's schemas."""
    built = faststream_document()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    server = next(iter(built["servers"]))
    for topic in ALL_TOPICS:
        names = _events_of(topic)
        if not names:
            continue
        cid = channel_id(topic)
        channels[cid] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"Key: {topic.key_rule}. {topic.partitions} partitions by default; "
                           f"order holds per key only. Dead letters: {topic.dlq}.",
            "servers": [{"$ref": f"#/servers/{server}"}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions,
                                   "bindingVersion": "0.5.0"}},
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "title": f"Afflux publishes on {topic.name}",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{name}"} for name in names],
        }
        for name in names:
            messages[name] = _message(topic, name)
    return {
        "asyncapi": built["asyncapi"],
        "info": built["info"],
        "defaultContentType": "application/json",
        "servers": built["servers"],
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _envelope_schemas()},
    }


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
                               "bindingVersion": "0.5.0"}},
        "x-schema-version": event.schema_version,
    }
    summary = (event.__doc__ or "").strip().split("\n\n")[0]
    if summary:
        message["summary"] = " ".join(summary.split())
    return message


def rendered() -> str:
    """The file's text, exactly as ``make schemas`` writes it."""
    return json.dumps(document(), indent=2) + "\n"


def main() -> int:
    ASYNCAPI_PATH.write_text(rendered())
    print(f"wrote {ASYNCAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
