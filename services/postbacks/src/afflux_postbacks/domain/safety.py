"""Which addresses a postback may reach: a partner's URL is data an admin typed, and an
Afflux process sits inside a network, so a postback must not become a way to call
the metadata service, the database or anything else not on the public internet.

The ranges refused are listed here by name, from IANA's IPv4 and IPv6 Special-Purpose
Address Registries (with RFC 6890's and later additions, as of 2025), every one of
them, including those the registry marks globally reachable (anycast relays, AS112,
NAT64's well-known prefix): a partner's tracker is never there. ``ipaddress``'s
``is_private``/``is_global`` flags are not enough on Python 3.11 (192.0.0.0/24 outside
its /29, 2002::/16, 3fff::/20 and the AS112 blocks pass as global), so they are only a
backstop behind the list. IPv6 must also be global unicast (2000::/3): the rest of the
IPv6 space is unassigned, reserved or multicast. Translated forms of an IPv4 address
(IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002:AABB:CCDD::``, NAT64 ``64:ff9b::a.b.c.d``) are
refused whole, whatever they embed; a deployment behind NAT64/DNS64 sets
``AFFLUX_POSTBACKS_ALLOW_PRIVATE``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SPECIAL_PURPOSE_IPV4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", '"This network"'),
    ("10.0.0.0/8", "Private-Use"),
    ("100.64.0.0/10", "Shared Address Space"),
    ("127.0.0.0/8", "Loopback"),
    ("169.254.0.0/16", "Link Local"),
    ("172.16.0.0/12", "Private-Use"),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix"),
    ("192.0.0.8/32", "IPv4 dummy address"),
    ("192.0.0.9/32", "Port Control Protocol Anycast"),
    ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast"),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery"),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery"),
    ("192.0.0.0/24", "IETF Protocol Assignments"),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "AS112-v4"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)"),
    ("192.168.0.0/16", "Private-Use"),
    ("192.175.48.0/24", "Direct Delegation AS112 Service"),
    ("198.18.0.0/15", "Benchmarking"),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "Multicast"),
    ("240.0.0.0/4", "Reserved"),
    ("255.255.255.255/32", "Limited Broadcast"),
)
"""IANA's IPv4 Special-Purpose Address Registry, the more specific before the block that
holds it (the reason names the narrowest), and multicast (its own registry)."""

SPECIAL_PURPOSE_IPV6: tuple[tuple[str, str], ...] = (
    ("::1/128", "Loopback Address"),
    ("::/128", "Unspecified Address"),
    ("::ffff:0:0/96", "IPv4-mapped Address"),
    ("64:ff9b::/96", "IPv4-IPv6 Translation (NAT64)"),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translation (local-use NAT64)"),
    ("100::/64", "Discard-Only Address Block"),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix"),
    ("2001::/32", "TEREDO"),
    ("2001:1::1/128", "Port Control Protocol Anycast"),
    ("2001:1::2/128", "Traversal Using Relays around NAT Anycast"),
    ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast"),
    ("2001:2::/48", "Benchmarking"),
    ("2001:3::/32", "AMT"),
    ("2001:4:112::/48", "AS112-v6"),
    ("2001:10::/28", "Deprecated (previously ORCHID)"),
    ("2001:20::/28", "ORCHIDv2"),
    ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix"),
    ("2001:db8::/32", "Documentation"),
    ("2001::/23", "IETF Protocol Assignments"),
    ("2002::/16", "6to4"),
    ("2620:4f:8000::/48", "Direct Delegation AS112 Service"),
    ("3fff::/20", "Documentation"),
    ("5f00::/16", "Segment Routing (SRv6) SIDs"),
    ("fc00::/7", "Unique-Local"),
    ("fe80::/10", "Link-Local Unicast"),
    ("ff00::/8", "Multicast"),
)
"""IANA's IPv6 Special-Purpose Address Registry (narrowest first, as above), and multicast."""

SPECIAL_PURPOSE: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), name) for cidr, name in SPECIAL_PURPOSE_IPV4 + SPECIAL_PURPOSE_IPV6)
GLOBAL_UNICAST_IPV6 = ipaddress.IPv6Network("2000::/3")


class Refused(Exception):
    """This URL must not be called (never retried)."""


def checked_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL with a host; ``Refused`` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"not a valid URL: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"only http and https postbacks are called, not {scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise Refused("the URL has no host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def forbidden(address: IPAddress) -> str | None:
    """Why ``address`` may not be called (None: it is a public address)."""
    for network, name in SPECIAL_PURPOSE:
        if address.version == network.version and address in network:
            return f"{name} ({network})"
    if isinstance(address, ipaddress.IPv6Address) and address not in GLOBAL_UNICAST_IPV6:
        return f"not global unicast ({GLOBAL_UNICAST_IPV6})"
    if not address.is_global:
        return "not a public address"
    return None


def first_allowed(addresses: list[str], allow_private: bool) -> str:
    """The address to call among what the host resolved to; ``Refused`` if any of them is
    not public (a host that resolves partly inside is refused whole) unless allowed."""
    if not addresses:
        raise Refused("the host resolved to no address")
    parsed = [ipaddress.ip_address(address.split("%", 1)[0]) for address in addresses]
    if not allow_private:
        for address in parsed:
            reason = forbidden(address)
            if reason is not None:
                raise Refused(f"{address} is {reason}: postbacks only go to public addresses "
                              "(AFFLUX_POSTBACKS_ALLOW_PRIVATE=true lifts this)")
    return str(parsed[0])
