"""Every contract event round-trips through the codec and matches its committed schema."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from contract_samples import CONVERTED, SAMPLES

from afflux_contracts import (
    EVENT_TYPES,
    ConversionAttributed,
    ConversionReported,
    DecodeError,
    Envelope,
    Event,
    Money,
    decode,
    derived_event_id,
    encode,
    round_money,
)
from afflux_contracts.export import SCHEMA_DIR, rendered_schemas


def envelope_of(event: Event) -> Envelope[Event]:
    return Envelope.wrap(event, producer="contract-test", correlation_id="corr-1", causation_id="cause-1")


def test_every_registered_event_has_a_sample() -> None:
    assert {type(sample).__name__ for sample in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_the_codec(event: Event) -> None:
    envelope = envelope_of(event)
    decoded = decode(encode(envelope))
    assert decoded == envelope
    assert type(decoded.payload) is type(event)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_encoded_event_validates_against_its_committed_schema(event: Event) -> None:
    schema = json.loads((SCHEMA_DIR / f"{event.event_type}.json").read_text())
    jsonschema.validate(json.loads(encode(envelope_of(event))), schema)


def test_committed_schemas_are_what_make_schemas_writes() -> None:
    committed = {path.name: path.read_text() for path in Path(SCHEMA_DIR).glob("*.json")}
    assert committed == rendered_schemas(), "contracts changed: run `make schemas` and commit"


def sample(kind: type[Event]) -> Event:
    """The one sample of ``kind`` (samples are looked up by type, not position)."""
    return next(event for event in SAMPLES if isinstance(event, kind))


def test_money_travels_as_a_decimal_string_never_a_float() -> None:
    wire = json.loads(encode(envelope_of(sample(ConversionAttributed))))
    assert wire["payload"]["payout"] == {"amount": "9.60", "currency": "USD"}
    assert wire["payload"]["sale_amount"] == "120.00"
    assert decode(encode(envelope_of(sample(ConversionAttributed)))).payload.payout.amount == Decimal("9.60")  # type: ignore[attr-defined]


def test_a_money_field_sent_as_a_json_number_keeps_every_digit() -> None:
    """A producer in another language may write money as a JSON number: the codec reads
    it as a Decimal, never through a float (which would keep 17 significant digits)."""
    wire = encode(envelope_of(sample(ConversionReported))).replace(
        b'"amount":"120.00"', b'"amount":123456789012.12345678')
    assert b"123456789012.12345678" in wire
    decoded = decode(wire).payload
    assert isinstance(decoded, ConversionReported)
    assert decoded.amount == Decimal("123456789012.12345678")
    assert str(decoded.amount) == "123456789012.12345678"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_non_finite_json_constant_is_not_money(constant: bytes) -> None:
    wire = encode(envelope_of(sample(ConversionReported)))
    wire = wire.replace(b'"amount":"120.00"', b'"amount":' + constant)
    with pytest.raises(DecodeError, match="amount"):
        decode(wire)


def test_schema_rejects_a_float_amount() -> None:
    schema = json.loads((SCHEMA_DIR / "ConversionAttributed.json").read_text())
    wire = json.loads(encode(envelope_of(sample(ConversionAttributed))))
    wire["payload"]["payout"]["amount"] = 9.6
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wire, schema)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "NoSuchEvent"}', "unknown event_type"),
        (b'{"event_type": "ConversionReported", "payload": {}}', "violates its schema"),
        (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
        (b'{"event_type": "PartnerCreated", "payload": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
         "RecursionError"),
    ],
)
def test_undecodable_values_raise_decode_error_with_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(value)


def test_unknown_fields_are_ignored_so_producers_can_add_fields() -> None:
    wire = json.loads(encode(envelope_of(sample(ConversionReported))))
    wire["payload"]["added_in_a_later_version"] = "x"
    assert isinstance(decode(json.dumps(wire).encode()).payload, ConversionReported)


def test_derived_event_id_is_a_stable_uuid7_of_time_and_identity() -> None:
    first = derived_event_id(CONVERTED, "aggregate-1", 3)
    assert first == derived_event_id(CONVERTED, "aggregate-1", 3)
    assert first != derived_event_id(CONVERTED, "aggregate-1", 4)
    assert first.version == 7


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("0.805", "USD", "0.81"), ("0.804", "USD", "0.80"), ("1234.5", "JPY", "1235"),
     ("1.0005", "BHD", "1.001")],
)
def test_round_money_is_half_up_to_the_currency_minor_units(
    amount: str, currency: str, expected: str
) -> None:
    assert str(round_money(Decimal(amount), currency)) == expected


def test_money_rejects_a_malformed_currency() -> None:
    with pytest.raises(ValueError):
        Money(amount=Decimal("1"), currency="US")
