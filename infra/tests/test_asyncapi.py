"""``contracts/asyncapi.json`` is what the services run: the committed file is what their
wiring gives, and every event a service's handlers take is a receive operation of that
service (its consumer group, on the event's topic) and every event it publishes a send
operation. With the runtime refusing to run anything its wiring does not declare
(``plumbing/tests/test_wiring.py``), a service cannot subscribe to what the document
does not show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from afflux_attribution.adapters.postgres import AttributionStore
from afflux_contracts import ATTRIBUTION, PARTNERS, TRACKING, Topic
from afflux_contracts.asyncapi import ASYNCAPI_PATH, Operation
from afflux_gateway.entrypoints.main import Projections
from afflux_infra.asyncapi import GROUP_PREFIX, operations, rendered, wirings
from afflux_payouts.adapters.store import PayoutsStore
from afflux_plumbing.runs import handled_types
from afflux_plumbing.wiring import Wiring
from afflux_postbacks.application.news import News
from afflux_tracking.application.routing import Routing

WIRINGS = wirings()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASYNCAPI_PATH.read_text())
    return loaded


def test_committed_asyncapi_is_what_make_schemas_writes() -> None:
    assert ASYNCAPI_PATH.read_text() == rendered(), (
        "a service's consumers or publishers (or the contracts) changed: run `make schemas` and commit")


def test_every_service_is_wired() -> None:
    assert sorted(w.service for w in WIRINGS) == sorted([
        "partners", "tracking", "attribution", "payouts", "postbacks", "gateway", "notifications", "console"])


def _messages(operation: dict[str, Any]) -> set[str]:
    return {message["$ref"].rsplit("/", 1)[-1] for message in operation["messages"]}


@pytest.mark.parametrize("wiring", WIRINGS, ids=lambda w: w.service)
def test_every_declared_operation_is_in_the_document_with_its_events(
        document: dict[str, Any], wiring: Wiring) -> None:
    for op in operations([wiring]):
        shown = document["operations"].get(op.id)
        assert shown is not None, f"{op.title}: not in the document (run `make schemas`)"
        assert shown["action"] == op.action
        assert shown["channel"] == {"$ref": f"#/channels/{op.topic.name.replace('.', '_')}"}
        assert _messages(shown) == set(op.event_names), op.title
        if op.group_id:
            assert shown["bindings"]["kafka"]["groupId"]["enum"] == [op.group_id]


def _received(document: dict[str, Any], service: str, group: str, topic: Topic) -> set[str]:
    op = Operation(service, group, "receive", topic, ())
    shown = document["operations"].get(op.id)
    assert shown is not None and shown["action"] == "receive", f"{service} does not show {group} on {topic}"
    return _messages(shown)


@pytest.mark.parametrize(("service", "handler", "group", "topic"), [
    ("attribution", AttributionStore, "tracking", TRACKING),
    ("attribution", AttributionStore, "partners", PARTNERS),
    ("payouts", PayoutsStore, "attribution", ATTRIBUTION),
    ("gateway", Projections, "tracking", TRACKING),
    ("postbacks", News, "attribution", ATTRIBUTION),
    ("tracking", Routing, "partners", PARTNERS),
], ids=lambda value: getattr(value, "__name__", str(getattr(value, "name", value))))
def test_a_handlers_event_types_are_a_receive_operation_of_its_service(
        document: dict[str, Any], service: str, handler: type, group: str, topic: Topic) -> None:
    """Read from the handler classes themselves, not from the wiring: an ``@handles`` of a
    new event is in the document, or this fails."""
    taken = {event.event_type for event in handled_types(handler)
             if getattr(event, "topic", None) == topic}
    assert taken
    assert _received(document, service, group, topic) == taken


def test_a_staff_view_is_a_replica_outside_any_group(document: dict[str, Any]) -> None:
    shown = document["operations"]["gateway_staff_receive_staff"]
    assert shown["bindings"]["kafka"] == {
        "clientId": {"type": "string", "enum": [f"{GROUP_PREFIX}-gateway-staff"]}, "bindingVersion": "0.5.0"}


def test_every_publisher_is_a_send_operation(document: dict[str, Any]) -> None:
    sent = {(w.service, p.name) for w in WIRINGS for p in w.publications}
    assert ("tracking", "intake") in sent and ("payouts", "relay") in sent
    shown = {op_id for op_id, op in document["operations"].items() if op["action"] == "send"}
    assert shown == {op.id for op in operations(WIRINGS) if op.action == "send"}
