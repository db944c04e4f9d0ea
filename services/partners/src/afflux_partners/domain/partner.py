"""A partner: anyone who promotes offers and earns commissions, from an affiliate site
to the advertiser's own newsletter."""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.domain import Aggregate, event

from afflux_partners.domain.rules import (
    RuleViolation,
    StatusChangeRefused,
    check_billing,
    check_email,
    check_name,
    check_partner_type,
    check_tags,
)
from afflux_partners.domain.values import Billing, PartnerStatus

INITIAL_STATUSES = frozenset({PartnerStatus.ACTIVE, PartnerStatus.INACTIVE, PartnerStatus.PENDING})
"""A partner starts active, inactive or pending review; suspension (for fraud) and
rejection (of an application) are decisions taken about an existing partner."""


def check_partner_status_change(current: PartnerStatus, requested: PartnerStatus) -> None:
    """Rejection answers an application: only a pending partner can be rejected. Every
    other move (suspend, reactivate, reconsider a rejected applicant) is allowed."""
    if requested is PartnerStatus.REJECTED and current is not PartnerStatus.PENDING:
        raise StatusChangeRefused(
            "partner", current, requested, "only a pending application can be rejected"
        )


# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
PARTNER_CREATED = "afflux_partners:Partner.Created"
PARTNER_STATUS_CHANGED = "afflux_partners:Partner.StatusChanged"


class Partner(Aggregate):
    """Its id (as 32 hex characters) is the public ``partner_id``."""

    TOPIC = "afflux_partners:Partner"

    @classmethod
    def create(
        cls,
        name: str,
        email: str,
        type: str | None = None,
        status: PartnerStatus = PartnerStatus.ACTIVE,
        tags: Iterable[str] = (),
        billing: Billing | None = None,
    ) -> Partner:
        """A new partner, if what it is given passes the rules."""
        if status not in INITIAL_STATUSES:
            raise RuleViolation(
                "status", f"a new partner is active, inactive or pending, not {status}", "invalid_status"
            )
        return cls(
            name=check_name(name),
            email=check_email(email),
            type=check_partner_type(type),
            status=status,
            tags=check_tags(tags),
            billing=check_billing(billing) if billing is not None else None,
        )

    @event("Created", topic=PARTNER_CREATED)
    def __init__(
        self,
        name: str,
        email: str,
        type: str | None,
        status: PartnerStatus,
        tags: tuple[str, ...],
        billing: Billing | None,
    ) -> None:
        self.name = name
        self.email = email
        self.type = type
        self.status = PartnerStatus(status)
        self.tags = tuple(tags)
        self.billing = billing

    @property
    def partner_id(self) -> str:
        return self.id.hex

    def change_status(self, status: PartnerStatus) -> bool:
        """Move to ``status``; False (and no event) if the partner is already there."""
        if status == self.status:
            return False
        check_partner_status_change(self.status, status)
        self._status_changed(status)
        return True

    @event("StatusChanged", topic=PARTNER_STATUS_CHANGED)
    def _status_changed(self, status: PartnerStatus) -> None:
        self.status = PartnerStatus(status)
