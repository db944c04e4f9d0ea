"""The codec's one-pass decoding reads every record exactly as the exact way does, and
leaves to the exact way every record it might read differently."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from contract_samples import SAMPLES

from afflux_contracts import (
    ClickRecorded,
    ConversionReported,
    DecodeError,
    Envelope,
    Event,
    PartnerCreated,
    PartnerUpdated,
    decode,
    encode,
)
from afflux_contracts.codec import _decode, _validated_bytes


def wire_of(event: Event) -> bytes:
    return encode(Envelope.wrap(event, producer="codec-test", correlation_id="corr-1"))


def sample(kind: type[Event]) -> Event:
    return next(event for event in SAMPLES if isinstance(event, kind))


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_what_the_codec_writes_is_read_in_one_pass_as_the_exact_way_reads_it(event: Event) -> None:
    wire = wire_of(event)
    one_pass = _validated_bytes(wire)
    assert one_pass is not None
    assert one_pass == _decode(wire) == decode(wire)
    assert type(one_pass.payload) is type(event)


def test_a_number_with_a_fraction_is_left_to_the_exact_way_and_keeps_its_digits_and_scale() -> None:
    wire = wire_of(sample(ConversionReported)).replace(b'"amount":"120.00"', b'"amount":120.10')
    assert _validated_bytes(wire) is None
    amount = decode(wire).payload.amount  # type: ignore[attr-defined]
    assert str(amount) == "120.10" and amount == Decimal("120.10")


def test_a_number_with_an_exponent_is_left_to_the_exact_way() -> None:
    wire = wire_of(sample(ConversionReported)).replace(b'"amount":"120.00"', b'"amount":1.2e2')
    assert _validated_bytes(wire) is None
    assert decode(wire).payload.amount == Decimal("120")  # type: ignore[attr-defined]


def test_a_whole_number_is_read_in_one_pass_exactly() -> None:
    digits = b"123456789012345678901234567890"
    wire = wire_of(sample(ConversionReported)).replace(b'"amount":"120.00"', b'"amount":' + digits)
    one_pass = _validated_bytes(wire)
    assert one_pass is not None
    assert one_pass.payload.amount == Decimal(digits.decode())  # type: ignore[attr-defined]


def test_a_key_that_contains_the_event_type_text_does_not_choose_the_type() -> None:
    """A PartnerCreated's bytes would also validate as a PartnerUpdated: a key naming
    ``event_type`` inside a string must not make the decoder read it as one."""
    wire = wire_of(sample(PartnerCreated))
    misleading = b'{"note\\"event_type":"PartnerUpdated",' + wire[1:]
    assert json.loads(misleading)["event_type"] == "PartnerCreated"
    decoded = decode(misleading)
    assert type(decoded.payload) is PartnerCreated and not isinstance(decoded.payload, PartnerUpdated)


def test_a_repeated_event_type_is_read_as_the_exact_way_reads_it() -> None:
    wire = wire_of(sample(PartnerCreated))
    repeated = b'{"event_type":"PartnerUpdated",' + wire[1:]
    assert decode(repeated) == _decode(repeated)
    assert type(decode(repeated).payload) is PartnerCreated


def test_a_lone_surrogate_escape_is_read_as_the_exact_way_reads_it() -> None:
    wire = wire_of(sample(PartnerCreated))
    name = json.loads(wire)["payload"]["name"]
    odd = wire.replace(json.dumps(name).encode(), b'"\\ud800"')
    assert decode(odd).payload.name == "\ud800"  # type: ignore[attr-defined]


def test_trailing_bytes_after_the_object_are_not_json() -> None:
    with pytest.raises(DecodeError, match="not JSON"):
        decode(wire_of(sample(PartnerCreated)) + b" x")


def test_an_envelope_that_violates_its_schema_says_so_with_the_field() -> None:
    wire = wire_of(sample(PartnerCreated)).replace(b'"schema_version":1', b'"schema_version":0')
    with pytest.raises(DecodeError, match=r"(?s)PartnerCreated violates its schema.*schema_version"):
        decode(wire)


def test_a_type_without_decimal_fields_reads_a_fractional_number_as_the_exact_way_does() -> None:
    """A click has no field that keeps a fraction inexactly: it is read in one pass, with
    or without such a number in it, and the same as the exact way reads it."""
    wire = wire_of(sample(ClickRecorded))
    added = wire[:-1] + b',"added_later":1.25}'
    for value in (wire, added):
        assert _validated_bytes(value) is not None
        assert decode(value) == _decode(value)
