"""Who the client is behind load balancers: the one rule every service uses for a
client's address (tracking's clicks, impressions, unique clicks and postback IP
allow-lists; the gateway's key throttle).

A request's client is its TCP peer, unless that peer is a trusted proxy
(``AFFLUX_TRUSTED_PROXIES``: addresses or CIDR networks). Only then is the forwarding
header read, and only the one the proxies write (``AFFLUX_TRUSTED_PROXY_HEADER``:
``x-forwarded-for``, the default, or ``forwarded``, RFC 7239): a proxy appends the
address it saw to the right of whatever the caller sent, so the chain is read from the
right, skipping trusted proxies, and the first address that is not one is the client.
Everything to its left was written by the caller and proves nothing. Reading the other
header too would let a caller choose its address by sending the header the proxy does
not rewrite.

uvicorn's own proxy-header handling is switched off (``service.py``): it trusts
127.0.0.1 by default, which would believe any local caller's ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scope = MutableMapping[str, Any]

HEADERS = ("x-forwarded-for", "forwarded")
"""The forwarding headers a deployment may say its proxies write."""


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose forwarding header is believed, and which header that is."""

    networks: tuple[Network, ...] = ()
    header: str = "x-forwarded-for"

    @classmethod
    def parse(cls, networks: str, header: str = "x-forwarded-for") -> TrustedProxies:
        """From the settings' text: addresses or CIDRs separated by commas or spaces.
        Raises ``ValueError`` naming what is wrong (a service refuses to start)."""
        parsed = []
        for entry in networks.replace(",", " ").split():
            try:
                parsed.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                message = f"AFFLUX_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
                raise ValueError(message) from None
        name = header.strip().lower()
        if name not in HEADERS:
            raise ValueError(f"AFFLUX_TRUSTED_PROXY_HEADER must be one of {', '.join(HEADERS)}, "
                             f"not {header!r}")
        return cls(tuple(parsed), name)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


NO_PROXIES = TrustedProxies()
"""Every client is its TCP peer (the default)."""


def client_address(scope: Scope, proxies: TrustedProxies) -> str | None:
    """The client's IP address (canonical text) for an ASGI ``scope``; ``None`` when
    unknown: no peer, or a trusted proxy forwarded something that is not an address (an
    obfuscated ``Forwarded: for=_hidden`` or ``unknown``), which is never the proxy's own."""
    peer = scope.get("client")
    peer_host: str | None = peer[0] if peer else None
    peer_address = _address(peer_host)
    if peer_address is None or not proxies.networks or not proxies.trusts(peer_address):
        return str(peer_address) if peer_address is not None else peer_host
    chain = list(_chain(scope, proxies.header))
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            return None
        if not proxies.trusts(address):
            return str(address)
    if chain:  # every hop is a trusted proxy: the first one is the client
        first = _address(chain[0])
        return str(first) if first is not None else None
    return str(peer_address)


def client_scheme(scope: Scope, proxies: TrustedProxies) -> str:
    """``https`` or ``http`` as the client used it: a trusted proxy's word (the
    ``X-Forwarded-Proto`` it set, or ``proto=`` of its ``Forwarded`` element), else the
    connection's own."""
    own: str = scope.get("scheme", "http")
    peer = scope.get("client")
    peer_address = _address(peer[0] if peer else None)
    if peer_address is None or not proxies.trusts(peer_address):
        return own
    if proxies.header == "forwarded":
        elements = _forwarded_elements(_joined(scope, "forwarded"))
        said = elements[-1].get("proto", "") if elements else ""
    else:
        said = _joined(scope, "x-forwarded-proto").split(",")[-1]
    said = said.strip().lower()
    return said if said in ("http", "https") else own


def _joined(scope: Scope, name: str) -> str:
    """Every value of header ``name``, joined as one list (RFC 9110 section 5.3)."""
    wanted = name.encode()
    values = (value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == wanted)
    return ",".join(values)


def _chain(scope: Scope, header: str) -> Iterator[str]:
    """The forwarded-for addresses, left (the caller's claim) to right (the last proxy's peer)."""
    if header == "forwarded":
        for element in _forwarded_elements(_joined(scope, "forwarded")):
            yield element.get("for", "")
        return
    for hop in _joined(scope, "x-forwarded-for").split(","):
        if hop.strip():
            yield hop.strip()


def _forwarded_elements(value: str) -> list[dict[str, str]]:
    """RFC 7239 elements (``for=...;proto=...``), comma-separated, values maybe quoted."""
    elements: list[dict[str, str]] = []
    for element in _split_unquoted(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_unquoted(element, ";"):
            name, _, raw = pair.partition("=")
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            pairs[name.strip().lower()] = raw
        if any(pairs.values()):
            elements.append(pairs)
    return elements


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _address(text: str | None) -> Address | None:
    """An IP address from a hop as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]:443``; IPv4-mapped IPv6 is the IPv4 address."""
    if not text:
        return None
    host = text.strip()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
