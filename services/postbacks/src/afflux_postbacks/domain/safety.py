"""Which addresses a postback may reach: a partner's URL is data an admin typed, and an
Afflux process sits inside a network, so a postback must not become a way to call
the metadata service, the database or anything else not on the public internet."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
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
