"""A MaxMind DB file (the format of GeoIP2 / GeoLite2 databases) written from a few IPv4
networks, for tests of reading one: the format is public (maxmind.github.io/MaxMind-DB),
a real database is licensed and large."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

_RECORD_BYTES = 3
"""24-bit records."""
_MARKER = b"\xab\xcd\xefMaxMind.com"


def country_database(networks: dict[str, str]) -> bytes:
    """A database answering ``{"country": {"iso_code": code}}`` for each network's addresses."""
    data, offsets = bytearray(), {}
    for code in sorted(set(networks.values())):
        offsets[code] = len(data)
        data += _encode({"country": {"iso_code": code}})
    nodes: list[list[Any]] = [[None, None]]
    for cidr, code in networks.items():
        network = IPv4Network(cidr)
        bits, node = int(network.network_address), 0
        for depth in range(network.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == network.prefixlen - 1:
                nodes[node][bit] = code
                break
            if nodes[node][bit] is None:
                nodes.append([None, None])
                nodes[node][bit] = len(nodes) - 1
            node = nodes[node][bit]
    count = len(nodes)

    def record(value: int | str | None) -> bytes:
        pointer = count if value is None else value if isinstance(value, int) else count + 16 + offsets[value]
        return pointer.to_bytes(_RECORD_BYTES, "big")

    tree = b"".join(record(left) + record(right) for left, right in nodes)
    metadata = {"node_count": (6, count), "record_size": (5, 24), "ip_version": (5, 4),
                "database_type": "Afflux-Test-Country", "languages": ["en"],
                "binary_format_major_version": (5, 2), "binary_format_minor_version": (5, 0),
                "build_epoch": (9, 1_765_000_000), "description": {"en": "tracking tests"}}
    return tree + bytes(16) + bytes(data) + _MARKER + _encode(metadata)


def _control(kind: int, size: int) -> bytes:
    if kind <= 7:
        return bytes([(kind << 5) | size])
    return bytes([size, kind - 7])  # extended types


def _encode(value: Any) -> bytes:
    """Strings, maps, arrays and ``(type, n)`` unsigned integers (5: 16, 6: 32, 9: 64 bits)."""
    if isinstance(value, str):
        encoded = value.encode()
        return _control(2, len(encoded)) + encoded
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(_encode(k) + _encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(_encode(item) for item in value)
    kind, number = value
    payload = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return _control(kind, len(payload)) + payload
