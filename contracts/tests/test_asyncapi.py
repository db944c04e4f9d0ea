"""The committed AsyncAPI document is well formed, shows every event with its topic, and
every event's wire form validates against its message schema; the shaper groups declared
operations by topic. (That the committed file is what the services run, and that every
handled event is a receive operation of its service, is ``infra/tests/test_asyncapi.py``:
this package knows no service.)"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from contract_samples import SAMPLES

from afflux_contracts import (
    ALL_TOPICS,
    EVENT_TYPES,
    PARTNERS,
    STAFF,
    ConversionAttributed,
    Envelope,
    Event,
    OfferCreated,
    PartnerCreated,
    StaffUserCreated,
    encode,
)
from afflux_contracts.asyncapi import ASYNCAPI_PATH, Operation, channel_id
from afflux_contracts.asyncapi import document as build_document

ID = re.compile(r"^[A-Za-z0-9_\-]+$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASYNCAPI_PATH.read_text())
    return loaded


def test_document_is_asyncapi_3_with_one_channel_per_topic(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {topic.name for topic in ALL_TOPICS}
    for name in [*document["channels"], *document["operations"], *document["components"]["messages"]]:
        assert ID.match(name), f"{name} is not a valid AsyncAPI id"


def test_every_event_is_a_message_of_its_topics_channel(document: dict[str, Any]) -> None:
    for name, event in EVENT_TYPES.items():
        channel = document["channels"][channel_id(event.topic)]
        assert channel["messages"][name] == {"$ref": f"#/components/messages/{name}"}, (
            f"{name}: no service sends or receives it (declare it in a service's wiring)")


def test_every_operation_lists_messages_of_its_own_channel(document: dict[str, Any]) -> None:
    for operation in document["operations"].values():
        assert operation["action"] in {"send", "receive"}
        channel = operation["channel"]["$ref"]
        assert operation["messages"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/")


def test_operations_are_grouped_by_topic_with_their_groups_and_events() -> None:
    built = build_document([
        Operation("billing", "partners", "receive", PARTNERS, (PartnerCreated, OfferCreated),
                  group_id="afflux-billing-partners"),
        Operation("routing", "partners", "receive", PARTNERS, (OfferCreated,), client_id="afflux-routing-p"),
        Operation("registry", "relay", "send", PARTNERS, (PartnerCreated,)),
        Operation("registry", "relay", "send", STAFF, (StaffUserCreated,)),
    ])
    assert list(built["channels"]) == ["afflux_partners_v1", "afflux_staff_v1"]
    assert list(built["channels"]["afflux_partners_v1"]["messages"]) == ["OfferCreated", "PartnerCreated"]
    operations = built["operations"]
    assert list(operations) == ["billing_partners_receive_partners", "registry_relay_send_partners",
                                "registry_relay_send_staff", "routing_partners_receive_partners"]
    billing = operations["billing_partners_receive_partners"]
    assert billing["action"] == "receive"
    assert billing["messages"] == [{"$ref": "#/channels/afflux_partners_v1/messages/OfferCreated"},
                                   {"$ref": "#/channels/afflux_partners_v1/messages/PartnerCreated"}]
    assert billing["bindings"]["kafka"]["groupId"] == {"type": "string", "enum": ["afflux-billing-partners"]}
    assert "groupId" not in operations["routing_partners_receive_partners"]["bindings"]["kafka"]
    assert operations["registry_relay_send_staff"]["action"] == "send"
    assert "bindings" not in operations["registry_relay_send_staff"]
    assert set(built["components"]["messages"]) == {"OfferCreated", "PartnerCreated", "StaffUserCreated"}
    assert "ConversionAttributedEnvelope" not in built["components"]["schemas"]
    assert ConversionAttributed.event_type not in built["components"]["messages"]


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
