"""A conversion, once attribution has decided it: attributed (and priced) or rejected.

The aggregate's id is a pure function of the tracker's ``conversion_id``, so a
report delivered twice (or retried after a failed commit) finds the decision already
made instead of making a second one. Its first event is the decision itself, stored
with what the public ConversionAttributed / ConversionRejected need, plus the
causation (the ConversionReported envelope) and correlation (the click's
transaction_id) ids that let an auditor follow a payout back to its click.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_attribution.domain.rules import Attributed, ConversionReport, Decision
from afflux_contracts import ConversionStatus

NAMESPACE = UUID("c4225025-7a7b-4e3c-abc8-8471ee61c1c4")
"""Conversion ids map to aggregate ids in this namespace: never change it."""

# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
CONVERSION = "afflux_attribution:Conversion"
CONVERSION_ATTRIBUTED = "afflux_attribution:Conversion.Attributed"
CONVERSION_REJECTED = "afflux_attribution:Conversion.Rejected"


class Conversion(Aggregate):
    """One reported conversion and its attribution decision."""

    TOPIC = CONVERSION

    if TYPE_CHECKING:  # set by the events' ``apply``; annotations here would become __init__ args
        conversion_id: str
        status: ConversionStatus
        event: str
        transaction_id: str | None
        partner_id: str | None
        offer_id: str | None
        order_id: str | None
        sale_amount: Decimal | None
        currency: str | None
        payout: Decimal | None
        revenue: Decimal | None
        reason: str | None
        message: str | None
        clicked_at: datetime | None
        converted_at: datetime
        decided_at: datetime

    class Created(Aggregate.Created):
        """What every decision records; never stored on its own (``decide`` stores an
        ``Attributed`` or a ``Rejected``)."""

        TOPIC = "afflux_attribution:Conversion.Created"

        conversion_id: str
        event: str
        transaction_id: str | None
        partner_id: str | None
        offer_id: str | None
        order_id: str | None
        sale_amount: Decimal | None
        currency: str | None
        clicked_at: datetime | None
        converted_at: datetime
        causation_id: str
        correlation_id: str | None

        def apply(self, aggregate: Any) -> None:
            conversion: Conversion = aggregate
            conversion.conversion_id = self.conversion_id
            conversion.event = self.event
            conversion.transaction_id = self.transaction_id
            conversion.partner_id = self.partner_id
            conversion.offer_id = self.offer_id
            conversion.order_id = self.order_id
            conversion.sale_amount = self.sale_amount
            conversion.currency = self.currency
            conversion.clicked_at = self.clicked_at
            conversion.converted_at = self.converted_at
            conversion.decided_at = self.timestamp
            conversion.reason = conversion.message = None
            conversion.payout = conversion.revenue = None

    class Attributed(Created):
        """Credited to ``partner_id`` and priced in ``currency`` with the terms in force.
        Approved at once: no review step exists yet."""

        TOPIC = CONVERSION_ATTRIBUTED

        payout: Decimal
        revenue: Decimal | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = ConversionStatus.APPROVED
            aggregate.payout = self.payout
            aggregate.revenue = self.revenue

    class Rejected(Created):
        """Earns nothing, for ``reason`` (a ``RejectionReason`` code)."""

        TOPIC = CONVERSION_REJECTED

        reason: str
        message: str

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = ConversionStatus.REJECTED
            aggregate.reason = self.reason
            aggregate.message = self.message

    @staticmethod
    def create_id(conversion_id: str) -> UUID:
        """The aggregate id of the conversion the tracker named ``conversion_id``."""
        return uuid5(NAMESPACE, conversion_id)

    @classmethod
    def decide(cls, report: ConversionReport, decision: Decision, causation_id: str) -> Conversion:
        """Record ``decision`` on ``report``; ``causation_id`` is the event_id of the
        ConversionReported envelope it answers."""
        click = decision.click
        facts: dict[str, Any] = {
            "id": cls.create_id(report.conversion_id),
            "conversion_id": report.conversion_id,
            "event": report.event,
            "transaction_id": report.transaction_id,
            "partner_id": click.partner_id if click else None,
            "offer_id": click.offer_id if click else None,
            "order_id": report.order_id,
            "sale_amount": report.sale_amount,
            "currency": decision.currency,
            "clicked_at": click.clicked_at if click else None,
            "converted_at": report.converted_at,
            "causation_id": causation_id,
            "correlation_id": report.transaction_id,
        }
        if isinstance(decision, Attributed):
            return cls._create(cls.Attributed, payout=decision.payout, revenue=decision.revenue, **facts)
        return cls._create(cls.Rejected, reason=decision.reason.value, message=decision.message, **facts)
