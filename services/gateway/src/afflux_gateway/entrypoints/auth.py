"""Who is calling: a partner by its ``X-Api-Key``, throttled per client address.

A missing, malformed, unknown or revoked key gets the same 401 (no hint whether a
partner or a key exists). Every failure counts against the caller's address; past
the limit the address gets 429 with ``Retry-After`` before its key is even looked
at. A revoked key stops working as soon as the gateway's partners consumer has
applied ``PartnerApiKeyRevoked`` (its lag on the partners log: well under a second
on a healthy broker); keys are looked up on every request, never cached.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from afflux_gateway.application.reads import GatewayReads, KeyHolder
from afflux_gateway.domain.access import key_sha256, plausible_key, same_hash
from afflux_gateway.domain.throttle import FailureThrottle
from afflux_plumbing.http import ApiError

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
    """Checks keys against the gateway's view, counting failures per address."""

    store: GatewayReads
    throttle: FailureThrottle
    lock: threading.Lock

    def refuse_if_throttled(self, address: str) -> None:
        with self.lock:
            wait = self.throttle.retry_after(address)
        if wait is not None:
            raise TooManyFailures(wait)

    def failed(self, address: str) -> None:
        with self.lock:
            self.throttle.failed(address)

    def check_key(self, api_key: str | None, address: str) -> KeyHolder:
        """The holder of ``api_key``, or 401 (429 once the address failed too often)."""
        self.refuse_if_throttled(address)
        holder = None
        if api_key and plausible_key(api_key):
            presented = key_sha256(api_key)
            holder = self.store.key_holder(presented)
            if holder is not None and not same_hash(presented, holder.key_sha256):
                holder = None
        if holder is None:
            self.failed(address)
            raise invalid_key()
        return holder


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def partner_auth(guard: Guard) -> KeyHolder:
    """A dependency that yields the calling partner (``Depends(partner_auth(guard))``)."""
    header = APIKeyHeader(
        name=KEY_HEADER,
        auto_error=False,
        description="the partner's API key (afx_live_...), shown once when issued",
    )

    def require_partner(request: Request, api_key: str | None = Depends(header)) -> KeyHolder:
        return guard.check_key(api_key, client_address(request))

    return Depends(require_partner)  # type: ignore[no-any-return]
