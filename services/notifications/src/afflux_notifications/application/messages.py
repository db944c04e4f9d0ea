"""Mail asked for over HTTP: the transactional mail that carries a secret.

An email verification link, an invitation or a password reset signs someone in: it
must not travel on the log, which is read widely and kept forever. The service that
mints the secret (the gateway's sign-up, the partners service's users) asks for the
mail with ``POST /v1/messages`` and its own idempotency key: the mail's id is a
function of the caller, the key, the recipient and the template, so a retried request
is the same mail, sent at most once like every other. The same key with a different
request is refused (``IdempotencyKeyReused``) rather than silently answered with the
first one's mail. The data (the secret) is kept only until the mail ends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from afflux_notifications.domain.addresses import sendable
from afflux_notifications.domain.catalogue import api_kind, check_data
from afflux_notifications.domain.mailing import Mail, to_caller


@dataclass(frozen=True)
class Requested:
    """A mail queued on request (or found queued by the same request before)."""

    notification_id: str
    recipient: str
    status: str


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


class InvalidAddress(ValueError):
    def __init__(self, address: str) -> None:
        super().__init__(f"{address[:100]!r} is not an address mail can be sent to")


class MessageDesk(Protocol):
    def queue_requested(self, mails: Sequence[Mail], request_sha256: str) -> list[Requested]:
        """Queue ``mails`` (in one transaction) unless queued before; each as it stands.
        ``IdempotencyKeyReused`` if one was queued before by a different request."""
        ...


def request_mail(desk: MessageDesk, *, caller: str, key: str, template: str, to: Sequence[str],
                 data: Mapping[str, Any]) -> list[Requested]:
    """Queue ``template`` to each address of ``to`` with ``data``. Raises ``UnknownKind``,
    ``MissingData``, ``InvalidAddress`` or ``IdempotencyKeyReused``."""
    kind = api_kind(template)
    check_data(kind, dict(data))
    for address in to:
        if not sendable(address):
            raise InvalidAddress(address)
    request = json.dumps([template, sorted(address.strip().lower() for address in to), dict(data)],
                         sort_keys=True, separators=(",", ":"), default=str)
    mails = to_caller(template, to, data, source=f"api:{caller}:{key}")
    return desk.queue_requested(mails, hashlib.sha256(request.encode()).hexdigest())
