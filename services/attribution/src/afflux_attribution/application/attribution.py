"""Attribution's store, the handlers of what its two consumers read, and its commands.

The partners consumer keeps the terms views (``program_terms.handle_partners``). The
tracking consumer indexes clicks and prices the traffic that earns
(``traffic.handle_traffic``) and decides each reported conversion
(``decisions.handle_reports``). Each handler takes a run's segment of consecutive
records of its types (a lone record is a run of one: the same code), reads what the
whole segment needs, and returns every write in batch form; the plumbing commits the
run with the consumer's position (``afflux_plumbing.runs``).

Determinism: paid traffic and conversions are judged only when the partners view had
caught up with the partners log's end after their records were fetched
(``partners_fresh``, set by the tracking consumer per fetch); otherwise they are
parked and retried, never judged with older terms.

The admin's review (approve, reject, reverse, adjust, and the appeal of a conversion a
rule rejected) changes a decided Conversion and its row in one transaction; the outbox
relay publishes the change. What the use cases read and write is named in ``ports``
and supplied by ``adapters/postgres.py`` (``AttributionStore``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from afflux_attribution.application.decisions import ClickWait, handle_reports
from afflux_attribution.application.ports import Decisions, Held, Reviews, Traffic
from afflux_attribution.application.program_terms import FOLDS, TermsStore, handle_partners
from afflux_attribution.application.reviews import appeal_of
from afflux_attribution.application.traffic import handle_traffic
from afflux_attribution.domain.conversion import Conversion
from afflux_attribution.domain.rules import Click
from afflux_contracts import (
    ClickRecorded,
    ConversionReported,
    ConversionStatus,
    ImpressionRecorded,
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    StatusChange,
)
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, TrackedApplication

ATTEMPTS = 3
"""Tries of a review that loses a race with another review of the same conversion."""
PARTNERS_EVENTS = tuple(FOLDS)
"""The partners events that change the terms views."""


class UnknownConversion(LookupError):
    """No decided conversion has this id (or no credited order has this offer and order_id)."""


class ConcurrentReview(Exception):
    """Another review of the same conversion kept winning the race."""


@dataclass(frozen=True)
class ConversionFilter:
    partner_id: str | None = None
    offer_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class PageKey:
    """Where a page of conversions ends: the listing's sort key of its last row."""

    converted_at: datetime
    conversion_id: str


@dataclass(frozen=True)
class ConversionPage:
    rows: list[dict[str, Any]]
    next: PageKey | None


class Reads(Protocol):
    """What the HTTP API reads."""

    def conversion(self, conversion_id: str) -> dict[str, Any] | None: ...

    def conversion_of_order(self, offer_id: str, order_id: str) -> str | None: ...

    def conversions(self, where: ConversionFilter, limit: int, after: PageKey | None) -> ConversionPage: ...

    def traffic(self, offer_id: str) -> list[dict[str, Any]]: ...


class Views(TermsStore, Traffic, Decisions, Reviews, Reads, Protocol):
    """Every port of attribution's use cases, as its store supplies them."""


class NoOtherPartitions:
    """A ``ClickWait`` that knows no tracking partitions (a store without a broker): a
    report whose click is not indexed is decided at once."""

    def ends(self) -> Mapping[int, int] | None:
        return {}

    def applied(self, ends: Mapping[int, int], own_partition: int) -> bool:
        return True


class Attribution(TrackedApplication):
    """The attribution service's event store (Conversion aggregates, priced traffic) and
    its use cases; ``open_views`` (an adapter's) supplies what they read and write."""

    name = "Attribution"

    partners_fresh: Callable[[], bool] = staticmethod(lambda: True)
    """Whether the partners view has caught up with the partners log's end since the
    records being applied were fetched (the service's tracking consumer sets it per fetch)."""
    click_wait: ClickWait = NoOtherPartitions()
    """How long a report may wait for its click (the service wires the tracking log's)."""

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.views: Views = self.open_views()

    def open_views(self) -> Views:
        raise NotImplementedError("a store's adapter supplies its views (adapters/postgres.py)")

    # -- the consumers' handlers ----------------------------------------------------------

    @handles(OfferCreated, OfferUpdated, OfferStatusChanged, RelationshipSet, PartnerCreated, PartnerUpdated,
             PartnerStatusChanged)
    def on_partners(self, run: Run) -> Changes:
        return handle_partners(run, self.views)

    @handles(ClickRecorded, ImpressionRecorded, idempotent=(ClickRecorded,))
    def on_traffic(self, run: Run) -> Changes:
        return handle_traffic(run, self.views, self.partners_fresh())

    @handles(ConversionReported)
    def on_reports(self, run: Run) -> Changes:
        return handle_reports(run, self.views, self.partners_fresh(), self.click_wait)

    def execute(self, statement: Any, params: Any = ()) -> None:
        """Run a statement that returns nothing, in the applying run's transaction when
        there is one (the adapters' locks and ensured rows)."""
        with self.tracked_recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)

    # -- the advertiser's review ---------------------------------------------------------

    def change_status(self, conversion_id: str, status: StatusChange, reason: str | None = None,
                      note: str | None = None, by: str | None = None) -> Conversion:
        """Approve, reject or reverse a decided conversion (``TransitionRefused`` if its
        status does not allow it, ``UnknownConversion`` if it is not decided). Approving one
        a rule rejected is an appeal, by ``by``."""
        def change(conversion: Conversion) -> Changes:
            if status is StatusChange.APPROVED and conversion.status is ConversionStatus.REJECTED \
                    and conversion.payout is None:
                appeal, share = appeal_of(conversion, self.views, by, reason, note)
                conversion.appeal(appeal)
                return Changes(writes=self.views.appeal_written(conversion, share))
            conversion.change_status(status, reason, note)
            return Changes(writes=self.views.reviewed(conversion))
        return self._review(conversion_id, change)

    def adjust(self, conversion_id: str, payout: Decimal, reason: str | None = None,
               note: str | None = None) -> Conversion:
        """Give an approved conversion a new payout, in its currency."""
        def change(conversion: Conversion) -> Changes:
            conversion.adjust(payout, reason, note)
            return Changes(writes=self.views.reviewed(conversion))
        return self._review(conversion_id, change)

    def conversion_of_order(self, offer_id: str, order_id: str) -> str:
        """The conversion_id an order was credited by on an offer."""
        found = self.views.conversion_of_order(offer_id, order_id)
        if found is None:
            raise UnknownConversion(f"no conversion of order {order_id!r} was credited on offer {offer_id!r}")
        return found

    def _review(self, conversion_id: str, change: Callable[[Conversion], Changes]) -> Conversion:
        """Apply ``change`` to the conversion and save it with its writes, again on a lost
        race (the retry sees the winner's status, so a second reversal is refused, not doubled)."""
        for _ in range(ATTEMPTS):
            try:
                conversion: Conversion = self.repository.get(Conversion.create_id(conversion_id))
            except AggregateNotFoundError:
                raise UnknownConversion(f"no decided conversion has id {conversion_id!r}") from None
            changes = change(conversion)
            try:
                self.save(conversion, writes=changes.writes)
            except IntegrityError:
                continue
            return conversion
        raise ConcurrentReview(f"conversion {conversion_id} was reviewed concurrently; retry")

    # -- reads ---------------------------------------------------------------------------

    def click(self, transaction_id: str) -> Click | None:
        return self.views.clicks({transaction_id}).get(transaction_id)

    def conversion(self, conversion_id: str) -> dict[str, Any] | None:
        """The conversions-view row of a decided conversion; ``None`` if not decided (yet)."""
        return self.views.conversion(conversion_id)

    def held(self, conversion_id: str) -> Held | None:
        """A report read but not decided yet (parked), if this is one."""
        return self.views.held({conversion_id}).get(conversion_id)

    def conversions(self, where: ConversionFilter, limit: int,
                    after: PageKey | None = None) -> ConversionPage:
        """One page of the decided conversions matching ``where``, in (converted_at,
        conversion_id) order."""
        return self.views.conversions(where, limit, after)
