"""Who is calling: a partner by its ``X-Api-Key``.

A missing, malformed, unknown or revoked key gets the same 401 (no hint whether a
partner or a key exists); once its source (address and key prefix, see ``throttle``)
failed too often, the 401 becomes a 429 with ``Retry-After``. A valid key always gets
through. A revoked key stops working as soon as the gateway's partners consumer has
applied ``PartnerApiKeyRevoked`` (its lag on the partners log: well under a second on
a healthy broker); keys are looked up on every request, never cached.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from afflux_gateway.application.reads import KeyHolder, Keys
from afflux_gateway.domain.access import key_sha256, plausible_key, same_hash
from afflux_gateway.entrypoints.throttle import FailureThrottle, source_of
from afflux_plumbing.http import ApiError, TrustedProxies, client_address
from afflux_plumbing.http_proxies import NO_PROXIES

KEY_HEADER = "X-Api-Key"
INVALID_KEY = "the API key is missing, not valid or revoked"


class TooManyFailures(ApiError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "too_many_failures",
            f"too many failed sign-ins from this address; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def invalid_key() -> ApiError:
    return ApiError(401, "unauthorized", INVALID_KEY, headers={"WWW-Authenticate": KEY_HEADER})


@dataclass
class Guard:
    """Checks keys against the gateway's view, counting failures per source."""

    keys: Keys
    throttle: FailureThrottle
    proxies: TrustedProxies = NO_PROXIES
    """Whose forwarding header names the client (``AFFLUX_TRUSTED_PROXIES``): behind a
    load balancer every caller's TCP peer is the balancer."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def address(self, request: Request) -> str:
        """The caller's address, by the plumbing's trusted-proxy rule."""
        return client_address(request.scope, self.proxies) or "unknown"

    def holder(self, api_key: str | None) -> KeyHolder | None:
        if not api_key or not plausible_key(api_key):
            return None
        presented = key_sha256(api_key)
        found = self.keys.key_holder(presented)
        return found if found is not None and same_hash(presented, found.key_sha256) else None

    def check_key(self, api_key: str | None, address: str) -> KeyHolder:
        """The holder of ``api_key``; else 401, or 429 once its source failed too often."""
        found = self.holder(api_key)
        if found is not None:
            return found
        source = source_of(address, api_key)
        with self.lock:
            wait = self.throttle.retry_after(source)
            self.throttle.failed(source)
        if wait is not None:
            raise TooManyFailures(wait)
        raise invalid_key()


def partner_auth(guard: Guard) -> KeyHolder:
    """A dependency that yields the calling partner (``Depends(partner_auth(guard))``)."""
    header = APIKeyHeader(
        name=KEY_HEADER,
        auto_error=False,
        description="the partner's API key (afx_live_...), shown once when issued",
    )

    def require_partner(request: Request, api_key: str | None = Depends(header)) -> KeyHolder:
        return guard.check_key(api_key, guard.address(request))

    return Depends(require_partner)  # type: ignore[no-any-return]
