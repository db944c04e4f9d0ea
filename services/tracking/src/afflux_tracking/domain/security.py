"""Who may report a conversion on an offer: the rules behind a postback's ``401``/``403``.

An offer's postback token never travels on the log: tracking knows its SHA-256 and
compares the hash of what a caller presents, in constant time. After a rotation the
token it replaced is accepted too, until the rotation's overlap ends (the advertiser's
servers move to the new one meanwhile): from that instant on, only the new one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refusal(StrEnum):
    """Why a report was refused; nothing of it is recorded."""

    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    IP_NOT_ALLOWED = "ip_not_allowed"
    PIXEL_NOT_ALLOWED = "pixel_not_allowed"


REFUSAL_MESSAGES = {
    Refusal.TOKEN_MISSING: "this offer's postbacks need its postback token (query parameter `token` "
                           "or header X-Afflux-Postback-Token)",
    Refusal.TOKEN_INVALID: "the postback token is not this offer's",
    Refusal.IP_NOT_ALLOWED: "postbacks for this offer are not accepted from this IP address",
    Refusal.PIXEL_NOT_ALLOWED: "this offer does not accept conversions by pixel; use a server postback",
}


@dataclass(frozen=True)
class PostbackSecurity:
    """An offer's conversion security as tracking holds it."""

    token_required: bool = True
    token_sha256: str | None = None
    allowed_ips: tuple[Network, ...] = field(default=())
    pixel_allowed: bool = False
    previous_token_sha256: str | None = None
    """The token the last rotation replaced, accepted before ``previous_valid_until``."""
    previous_valid_until: datetime | None = None

    @classmethod
    def of(cls, token_required: bool, token_sha256: str | None, allowed_ips: tuple[str, ...],
           pixel_allowed: bool) -> PostbackSecurity:
        """From the published form (networks as text; garbage is skipped, never trusted)."""
        networks = tuple(net for net in map(_network, allowed_ips) if net is not None)
        return cls(token_required, token_sha256, networks, pixel_allowed)

    def check_postback(self, token: str | None, ip: str | None, now: datetime) -> Refusal | None:
        """The first rule a server postback breaks at ``now``, or ``None``."""
        if self.token_required:
            if not token:
                return Refusal.TOKEN_MISSING
            if not self._accepts(hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(), now):
                return Refusal.TOKEN_INVALID
        return self._check_ip(ip)

    def _accepts(self, presented: str, now: datetime) -> bool:
        """Both hashes are compared whatever the first answer, in constant time each."""
        current = self.token_sha256 is not None and hmac.compare_digest(presented, self.token_sha256)
        overlapping = self.previous_valid_until is not None and now < self.previous_valid_until
        previous = (self.previous_token_sha256 is not None
                    and hmac.compare_digest(presented, self.previous_token_sha256))
        return current or (overlapping and previous)

    def check_pixel(self) -> Refusal | None:
        """A browser pixel carries no secret: only offers that opted in take it."""
        return None if self.pixel_allowed else Refusal.PIXEL_NOT_ALLOWED

    def _check_ip(self, ip: str | None) -> Refusal | None:
        if not self.allowed_ips:
            return None
        address = _address(ip)
        if address is None or not any(address in network for network in self.allowed_ips):
            return Refusal.IP_NOT_ALLOWED
        return None


def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
