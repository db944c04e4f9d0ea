"""Pagination cursors (payouts' commissions, attribution's and the gateway's conversions)
are opaque but exact, and nothing else passes for one (a 422, never a 500)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from afflux_plumbing.cursor import InvalidCursor, after_param, decode_cursor, encode_cursor
from afflux_plumbing.http import ApiError


def test_cursor_round_trips_the_page_key_to_the_microsecond() -> None:
    key = (datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), "conv/ü \n1")
    assert decode_cursor(encode_cursor(*key)) == key


def test_cursor_keeps_the_instant_whatever_the_offset_it_was_made_in() -> None:
    at = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    instant, _ = decode_cursor(encode_cursor(at, "c"))
    assert instant == at and instant.tzinfo is UTC


def nested(depth: int) -> str:
    """A cursor of ``depth`` arrays in one another: a recursive JSON parser runs out of stack."""
    raw = "[" * depth + "]" * depth
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_deeply_nested_cursor_is_invalid_not_a_recursion_error() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(nested(2_000))  # within the length a listing accepts, deeper than json's recursion


def b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "", "not-a-cursor", "%%%", b64([]), b64({"a": 1}), b64(["2026-03-01T12:00:00+00:00"]),
        b64(["yesterday", "c"]), b64(["2026-03-01T12:00:00+00:00", 7]),
        b64(["2026-03-01T12:00:00", "c"]),  # no offset: not an instant
        b64(["2026-03-01T12:00:00+00:00", "c\x00"]), b64(["2026-03-01T12:00:00+00:00", ["c"]]),
        nested(100_000)[:1000], nested(300),
    ],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_a_listing_s_after_parameter_is_a_422_naming_it_for_anything_but_a_cursor() -> None:
    assert after_param(None) is None
    assert after_param(encode_cursor(datetime(2026, 3, 1, tzinfo=UTC), "c")) == (
        datetime(2026, 3, 1, tzinfo=UTC), "c")
    with pytest.raises(ApiError) as refused:
        after_param(nested(2_000))
    assert (refused.value.status, refused.value.field) == (422, "after")
