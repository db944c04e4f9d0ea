"""``--instances``: what each extra instance of a service gets."""

from __future__ import annotations

import pytest

from afflux_infra.scale import instance_env, instance_port, parse_instances

SERVICES = ["partners", "tracking", "attribution", "payouts"]


def test_instances_are_parsed_per_service() -> None:
    assert parse_instances("attribution=3, payouts=2", SERVICES) == {"attribution": 3, "payouts": 2}
    assert parse_instances("", SERVICES) == {}


@pytest.mark.parametrize(("value", "message"), [
    ("billing=2", "no service 'billing'"),
    ("attribution=0", "needs a count of at least 1"),
    ("attribution", "needs a count of at least 1"),
])
def test_a_wrong_instances_value_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_instances(value, SERVICES)


def test_each_instance_has_its_own_port() -> None:
    assert [instance_port(8003, n) for n in (1, 2, 3)] == [8003, 8103, 8203]


def test_tracking_instances_keep_their_positions_apart_and_know_how_many_they_are() -> None:
    assert instance_env("tracking", 1, 3) == {"AFFLUX_TRACKING_INSTANCES": "3"}
    assert instance_env("tracking", 2, 3) == {"AFFLUX_TRACKING_INSTANCES": "3",
                                              "AFFLUX_TRACKING_SCHEMA": "tracking_2"}
    assert instance_env("attribution", 2, 3) == {}
