"""Pagination cursors of the commissions listing are opaque but exact."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from afflux_payouts.application.reads import PageKey
from afflux_payouts.entrypoints.cursor import InvalidCursor, decode_cursor, encode_cursor


def test_cursor_round_trips_the_page_key_to_the_microsecond() -> None:
    key = PageKey(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), "conv/ü 1")
    assert decode_cursor(encode_cursor(key)) == key


def test_cursor_keeps_the_instant_whatever_the_offset_it_was_made_in() -> None:
    at = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_cursor(encode_cursor(PageKey(at, "c")))
    assert decoded.converted_at == at and decoded.converted_at.tzinfo is UTC


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
