"""The committed AsyncAPI document is what the contracts say, and every event's wire
form validates against the message schema it publishes."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from contract_samples import SAMPLES

from afflux_contracts import ALL_TOPICS, EVENT_TYPES, Envelope, Event, encode
from afflux_contracts.asyncapi import ASYNCAPI_PATH, channel_id, rendered

ID = re.compile(r"^[A-Za-z0-9_\-]+$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASYNCAPI_PATH.read_text())
    return loaded


def test_committed_asyncapi_is_what_make_schemas_writes() -> None:
    assert ASYNCAPI_PATH.read_text() == rendered(), "contracts changed: run `make schemas` and commit"


def test_document_is_asyncapi_3_with_one_channel_per_topic(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {topic.name for topic in ALL_TOPICS}
    for name in [*document["channels"], *document["operations"], *document["components"]["messages"]]:
        assert ID.match(name), f"{name} is not a valid AsyncAPI id"


def test_every_event_is_a_message_of_its_topics_channel(document: dict[str, Any]) -> None:
    for name, event in EVENT_TYPES.items():
        channel = document["channels"][channel_id(event.topic)]
        assert channel["messages"][name] == {"$ref": f"#/components/messages/{name}"}
        operation = document["operations"][f"publish_{channel_id(event.topic)}"]
        assert {"$ref": f"#/channels/{channel_id(event.topic)}/messages/{name}"} in operation["messages"]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = re.findall(r'"\$ref": "([^"]+)"', ASYNCAPI_PATH.read_text())
    assert refs
    for ref in set(refs):
        assert _resolve(document, ref) is not None, ref


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_event_on_the_wire_validates_against_its_message_payload(
        document: dict[str, Any], event: Event) -> None:
    message = document["components"]["messages"][event.event_type]
    schema = {**_resolve(document, message["payload"]["$ref"]), "components": document["components"]}
    wire = json.loads(encode(Envelope.wrap(event, producer="asyncapi-test", correlation_id="c-1")))
    jsonschema.validate(wire, schema)
    wire["payload"] = "not an object"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wire, schema)
