"""A conversion, once attribution has decided it: attributed (and priced) or rejected.

The aggregate's id is a pure function of the tracker's ``conversion_id``, so a
report delivered twice (or retried after a failed commit) finds the decision already
made instead of making a second one. Its first event is the decision itself, stored
with what the public ConversionAttributed / ConversionRejected need, plus the
causation (the ConversionReported envelope) and correlation (the click's
transaction_id) ids that let an auditor follow a payout back to its click.

After the decision, the advertiser's review changes it (``StatusChanged``), along
the transitions of ``REVIEW_TRANSITIONS``: a pending conversion is approved or
rejected, an approved one reversed (refund, chargeback) or adjusted to a new payout,
a rejected one approved. Anything else is refused, naming the status the
conversion is in. A conversion attribution rejected by a rule (fraud, cap, duplicate...)
was never priced: approving it is an *appeal* (``Appealed``), priced then with the terms
in force at its conversion time, naming who approved it and why; one never credited to
a partner (no click, no coupon) cannot be approved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from afflux_attribution.domain.rules import Attributed, ConversionReport, Decision
from afflux_contracts import ConversionStatus, StatusChange, minor_units

NAMESPACE = UUID("c4225025-7a7b-4e3c-abc8-8471ee61c1c4")
"""Conversion ids map to aggregate ids in this namespace: never change it."""

# Stored event topics: the names events are stored under, fixed forever so that
# moving or renaming a class never makes history unreadable.
CONVERSION = "afflux_attribution:Conversion"
CONVERSION_ATTRIBUTED = "afflux_attribution:Conversion.Attributed"
CONVERSION_REJECTED = "afflux_attribution:Conversion.Rejected"
CONVERSION_STATUS_CHANGED = "afflux_attribution:Conversion.StatusChanged"
CONVERSION_APPEALED = "afflux_attribution:Conversion.Appealed"
SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")

_APPROVED = frozenset({StatusChange.REVERSED, StatusChange.ADJUSTED})
REVIEW_TRANSITIONS: dict[ConversionStatus, frozenset[StatusChange]] = {
    ConversionStatus.PENDING: frozenset({StatusChange.APPROVED, StatusChange.REJECTED}),
    ConversionStatus.APPROVED: _APPROVED,
    ConversionStatus.ATTRIBUTED: _APPROVED,
    ConversionStatus.REJECTED: frozenset({StatusChange.APPROVED}),
    ConversionStatus.REVERSED: frozenset(),
}
"""The review changes each status allows (a reversal is final)."""


class TransitionRefused(Exception):
    """A review change the conversion's current status does not allow."""

    def __init__(self, conversion_id: str, status: ConversionStatus, message: str) -> None:
        super().__init__(message)
        self.conversion_id = conversion_id
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Appeal:
    """How a conversion approved on appeal is priced, and who approved it why."""

    currency: str
    payout: Decimal
    revenue: Decimal | None
    terms: dict[str, Any] | None
    trace: list[dict[str, Any]]
    subs: dict[str, str | None]
    by: str | None
    reason: str | None
    note: str | None


class InvalidPayout(ValueError):
    """An adjusted payout that is negative or finer than the currency's minor unit."""


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
        note: str | None
        clicked_at: datetime | None
        converted_at: datetime
        decided_at: datetime
        changed_at: datetime | None
        coupon_code: str | None
        trace: list[dict[str, Any]]
        terms: dict[str, Any] | None
        subs: dict[str, str | None]

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
            conversion.reason = conversion.message = conversion.note = None
            conversion.payout = conversion.revenue = None
            conversion.changed_at = None
            conversion.coupon_code = None
            conversion.trace = []
            conversion.terms = None
            conversion.subs = {}

    class Attributed(Created):
        """Credited to ``partner_id`` and priced in ``currency`` with the terms in force:
        approved, or pending (held for review: ``reason`` says why). ``trace`` and ``terms``
        say why (decisions stored before they existed have none); ``subs``: the click's."""

        TOPIC = CONVERSION_ATTRIBUTED

        payout: Decimal
        revenue: Decimal | None
        status: str = ConversionStatus.APPROVED.value
        coupon_code: str | None = None
        trace: list[dict[str, Any]] = field(default_factory=list)
        terms: dict[str, Any] | None = None
        reason: str | None = None
        subs: dict[str, str | None] = field(default_factory=dict)

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = ConversionStatus(self.status)
            aggregate.payout = self.payout
            aggregate.revenue = self.revenue
            aggregate.coupon_code = self.coupon_code
            aggregate.trace = list(self.trace)
            aggregate.terms = self.terms
            aggregate.reason = self.reason
            aggregate.subs = dict(getattr(self, "subs", None) or {})  # none before subs were kept

    class Rejected(Created):
        """Earns nothing, for ``reason`` (a ``RejectionReason`` code)."""

        TOPIC = CONVERSION_REJECTED

        reason: str
        message: str
        trace: list[dict[str, Any]] = field(default_factory=list)
        terms: dict[str, Any] | None = None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = ConversionStatus.REJECTED
            aggregate.reason = self.reason
            aggregate.message = self.message
            aggregate.trace = list(self.trace)
            aggregate.terms = self.terms

    @staticmethod
    def create_id(conversion_id: str) -> UUID:
        """The aggregate id of the conversion the tracker named ``conversion_id``."""
        return uuid5(NAMESPACE, conversion_id)

    @classmethod
    def decide(cls, report: ConversionReport, decision: Decision, causation_id: str) -> Conversion:
        """Record ``decision`` on ``report``; ``causation_id`` is the event_id of the
        ConversionReported envelope it answers."""
        credit, click = decision.credit, decision.click
        facts: dict[str, Any] = {
            "id": cls.create_id(report.conversion_id),
            "conversion_id": report.conversion_id,
            "event": report.event,
            "transaction_id": report.transaction_id,
            "partner_id": credit.partner_id if credit else None,
            "offer_id": credit.offer_id if credit else (
                report.offer_id if report.transaction_id is None else None),
            "order_id": report.order_id,
            "sale_amount": report.sale_amount,
            "currency": decision.currency,
            "clicked_at": click.clicked_at if click else None,
            "converted_at": report.converted_at,
            "causation_id": causation_id,
            "correlation_id": report.transaction_id or report.coupon_code,
            "trace": [check.model_dump(mode="json") for check in decision.trace],
            "terms": decision.terms.model_dump(mode="json") if decision.terms else None,
        }
        if isinstance(decision, Attributed):
            return cls._create(cls.Attributed, payout=decision.payout, revenue=decision.revenue,
                               status=decision.status.value, reason=decision.reason,
                               subs=click.subs if click else {},
                               coupon_code=credit.coupon_code if credit else None, **facts)
        return cls._create(cls.Rejected, reason=decision.reason.value, message=decision.message, **facts)

    class StatusChanged(Aggregate.Event):
        """The advertiser's review: ``change`` from ``previous_status``; ``payout`` is what
        the conversion earns afterwards (the new amount when adjusted)."""

        TOPIC = CONVERSION_STATUS_CHANGED

        conversion_id: str
        partner_id: str
        offer_id: str
        currency: str
        change: str
        previous_status: str
        payout: Decimal
        reason: str | None
        note: str | None
        correlation_id: str | None

        def apply(self, aggregate: Any) -> None:
            conversion: Conversion = aggregate
            if self.change != StatusChange.ADJUSTED:
                conversion.status = ConversionStatus(self.change)
            conversion.payout = self.payout
            conversion.reason = self.reason
            conversion.message = None
            conversion.note = self.note
            conversion.changed_at = self.timestamp

    class Appealed(Aggregate.Event):
        """A conversion rejected by a rule (``rejected_reason``), approved by ``by`` for
        ``reason``: credited now, priced with the terms in force at its conversion time.
        Carries what the published ConversionAttributed needs."""

        TOPIC = CONVERSION_APPEALED

        conversion_id: str
        transaction_id: str | None
        partner_id: str
        offer_id: str
        event: str
        order_id: str | None
        sale_amount: Decimal | None
        currency: str
        payout: Decimal
        revenue: Decimal | None
        clicked_at: datetime | None
        converted_at: datetime
        coupon_code: str | None
        rejected_reason: str
        by: str | None
        reason: str | None
        note: str | None
        trace: list[dict[str, Any]]
        terms: dict[str, Any] | None
        subs: dict[str, str | None]
        correlation_id: str | None

        def apply(self, aggregate: Any) -> None:
            conversion: Conversion = aggregate
            conversion.status = ConversionStatus.APPROVED
            conversion.currency, conversion.payout = self.currency, self.payout
            conversion.revenue = self.revenue
            conversion.reason, conversion.message, conversion.note = self.reason, None, self.note
            conversion.trace, conversion.terms = list(self.trace), self.terms
            conversion.subs = dict(self.subs)
            conversion.changed_at = self.timestamp

    def appealable(self) -> str:
        """The rule that rejected this conversion, if approving it is an appeal (it was
        credited to a partner, never priced); else ``TransitionRefused``."""
        if self.status is not ConversionStatus.REJECTED or self.payout is not None:
            raise TransitionRefused(self.conversion_id, self.status,
                                    f"conversion {self.conversion_id} is {self.status.value}: only a "
                                    "conversion rejected by a rule is approved on appeal")
        if self.partner_id is None or self.offer_id is None or self.reason is None:
            raise TransitionRefused(
                self.conversion_id, self.status,
                f"conversion {self.conversion_id} is {self.status.value} ({self.reason}) at attribution, "
                f"was never credited to a partner, so it cannot be approved")
        return self.reason

    def appeal(self, priced: Appeal) -> None:
        """Credit this conversion on appeal, as ``priced`` (``appealable`` first)."""
        rejected = self.appealable()
        assert self.partner_id is not None and self.offer_id is not None
        self.trigger_event(
            self.Appealed, conversion_id=self.conversion_id, transaction_id=self.transaction_id,
            partner_id=self.partner_id, offer_id=self.offer_id, event=self.event, order_id=self.order_id,
            sale_amount=self.sale_amount, currency=priced.currency, payout=priced.payout,
            revenue=priced.revenue, clicked_at=self.clicked_at, converted_at=self.converted_at,
            coupon_code=self.coupon_code, rejected_reason=rejected, by=priced.by, reason=priced.reason,
            note=priced.note, trace=[*self.trace, *priced.trace], terms=priced.terms, subs=priced.subs,
            correlation_id=self.transaction_id,
        )

    def change_status(self, status: StatusChange, reason: str | None = None, note: str | None = None) -> None:
        """Approve, reject or reverse; ``TransitionRefused`` unless the status allows it."""
        if status is StatusChange.ADJUSTED:
            raise ValueError("an adjustment names its new payout: use adjust()")
        self._review(status, self._check(status), reason, note)

    def adjust(self, payout: Decimal, reason: str | None = None, note: str | None = None) -> None:
        """Keep the conversion approved with a new ``payout``, in its currency, exactly:
        ``InvalidPayout`` if negative or finer than the currency's minor unit (never rounded)."""
        self._check(StatusChange.ADJUSTED)
        assert self.currency is not None  # priced, so _check passed
        if not payout.is_finite() or payout < 0:
            raise InvalidPayout(f"a payout cannot be {payout}")
        try:
            in_minor_units = payout.quantize(Decimal(1).scaleb(-minor_units(self.currency)))
        except InvalidOperation:
            in_minor_units = None
        if in_minor_units is None or in_minor_units != payout:
            raise InvalidPayout(f"{payout} is not an exact amount of {self.currency} "
                                f"(at most {minor_units(self.currency)} decimal places)")
        self._review(StatusChange.ADJUSTED, in_minor_units, reason, note)

    def _review(self, change: StatusChange, payout: Decimal, reason: str | None, note: str | None) -> None:
        self.trigger_event(
            self.StatusChanged, conversion_id=self.conversion_id, partner_id=self.partner_id,
            offer_id=self.offer_id, currency=self.currency, change=change.value,
            previous_status=self.status.value, payout=payout, reason=reason, note=note,
            correlation_id=self.transaction_id,
        )

    def _check(self, change: StatusChange) -> Decimal:
        """The current payout, if ``change`` is allowed now; else ``TransitionRefused``."""
        if change not in REVIEW_TRANSITIONS[self.status]:
            allowed = sorted(c.value for c in REVIEW_TRANSITIONS[self.status])
            detail = f"it can be {', '.join(allowed)}" if allowed else "that is final"
            raise TransitionRefused(
                self.conversion_id, self.status,
                f"conversion {self.conversion_id} is {self.status.value}: it cannot be {change.value} "
                f"({detail})",
            )
        if self.payout is None or self.partner_id is None or self.offer_id is None:
            raise TransitionRefused(
                self.conversion_id, self.status,
                f"conversion {self.conversion_id} is {self.status.value} ({self.reason}) at attribution, "
                f"was never credited to a partner and priced, so it cannot be {change.value}",
            )
        return self.payout
