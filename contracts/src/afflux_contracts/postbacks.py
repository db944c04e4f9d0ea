"""Events of ``afflux.postbacks.v1``: what became of each partner postback, keyed by partner_id.

The URL on these events is the one called with its secrets masked (query values of
keys such as ``token`` or ``key``, and any password in it): the log is read widely,
a partner's tracker credentials must not be.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from afflux_contracts.event import Event
from afflux_contracts.topics import POSTBACKS
from afflux_contracts.values import UtcDatetime

PostbackKind = Literal["attributed", "status_changed"]
"""What a postback told the partner: a conversion's attribution, or a change of its status."""


class PartnerPostbackDelivered(Event):
    """The partner's postback URL answered 2xx for this conversion."""

    topic: ClassVar = POSTBACKS

    delivery_id: str
    conversion_id: str
    partner_id: str
    offer_id: str
    url: str
    """The URL called, secrets masked."""
    attempts: int
    status_code: int
    delivered_at: UtcDatetime
    kind: PostbackKind = "attributed"
    conversion_status: str | None = None
    """The conversion's status the postback told (its ``{status}``)."""

    def partition_key(self) -> str:
        return self.partner_id


class PartnerPostbackFailed(Event):
    """The postback was given up: refused as unsafe, answered with a final error, or
    still failing when its retry time ran out."""

    topic: ClassVar = POSTBACKS

    delivery_id: str
    conversion_id: str
    partner_id: str
    offer_id: str
    url: str
    """The URL called (or refused), secrets masked."""
    attempts: int
    status_code: int | None = None
    """The last answer's status, if the last attempt got one."""
    error: str
    failed_at: UtcDatetime
    kind: PostbackKind = "attributed"
    conversion_status: str | None = None
    """The conversion's status the postback told (its ``{status}``)."""

    def partition_key(self) -> str:
        return self.partner_id
