"""What a run of tracking records remembers while it applies, so that a record reads the
database only for what no record before it in the run has read.

A run commits as one transaction (``TrackedApplication.apply_run``) and the tracking
consumer gates each fetch on the partners view having caught up with its log, so for the
length of a run:

- the terms views (offer and relationship versions, partner statuses, coupons) are the
  ones the gate vouched for: read once per run, and forgotten when the run itself applies
  a partners event;
- the tallies a decision locked (``FOR UPDATE``, under the event store's insert lock)
  cannot change but by this run until it commits: read once, then kept current here as
  the run's decisions add to them, so every cap and tier sees every decision before it
  in log order, exactly as if each had re-read them;
- the decisions' view writes wait here, grouped by statement, and are written at the
  run's end (``later``: one ``executemany`` per statement; the tallies' and IPs' sums in
  one statement each): the run's own decided conversions, taken transaction events and
  credited orders are known here meanwhile, so a later record of the run sees them as
  if they were written;
- the records' new aggregates wait too, and their events are inserted at the run's end,
  in record order, in one statement (one take of the event store's insert lock and one
  notification, not one per record).

The memory belongs to the applying thread and lives only as long as its run: a run
that fails commits nothing and forgets everything with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from eventsourcing.domain import Aggregate

from afflux_attribution.adapters.counts_sql import Key, TallyRow
from afflux_attribution.domain.program import Tally
from afflux_attribution.domain.terms import OfferTerms, RelationshipTerms
from afflux_contracts import PartnerStatus
from afflux_plumbing.store import Write

IpKey = tuple[str, str, date]
"""(offer_id, ip, day)."""


@dataclass
class Remembered:
    """One run's reads, and the tallies with the run's own additions."""

    offer_terms: dict[str, list[OfferTerms]] = field(default_factory=dict)
    relationship_terms: dict[tuple[str, str], list[RelationshipTerms]] = field(default_factory=dict)
    partner_status: dict[str, PartnerStatus | None] = field(default_factory=dict)
    coupon_partner: dict[tuple[str, str], str | None] = field(default_factory=dict)
    tallies: dict[Key, Tally] = field(default_factory=dict)
    ip_today: dict[IpKey, int] = field(default_factory=dict)
    store_locked: bool = False
    aggregates: list[Aggregate] = field(default_factory=list)
    """The run's new aggregates (conversions, priced clicks and impressions), in record order."""
    later: dict[int, list[Write]] = field(default_factory=dict)
    """The run's decision writes not written yet, by statement (its ``id``: statements are
    built once per store), in the order first made."""
    added: dict[Key, TallyRow] = field(default_factory=dict)
    ip_added: dict[IpKey, int] = field(default_factory=dict)
    decided: set[str] = field(default_factory=set)
    converted: set[tuple[str, str]] = field(default_factory=set)
    """(transaction_id, event) taken by the run's decisions."""
    credited: set[tuple[str, str]] = field(default_factory=set)
    """(offer_id, order_id) credited by the run's decisions."""

    def forget_terms(self) -> None:
        """A partners event applied in this run changes the terms views."""
        self.offer_terms.clear()
        self.relationship_terms.clear()
        self.partner_status.clear()
        self.coupon_partner.clear()

    def write_later(self, statement: int, writes: list[Write]) -> None:
        self.later.setdefault(statement, []).extend(writes)

    def add(self, key: Key, conversions: int, approved: int, payout: Decimal, revenue: Decimal) -> None:
        """A decision of the run added to a locked tally (written with the run's sums)."""
        tally = self.tallies.get(key)
        if tally is not None:
            self.tallies[key] = replace(tally, conversions=tally.conversions + conversions,
                                        approved=tally.approved + approved,
                                        payout=tally.payout + payout, revenue=tally.revenue + revenue)
        prior = self.added.get(key, (*key, 0, 0, Decimal(0), Decimal(0)))
        self.added[key] = (*key, prior[3] + conversions, prior[4] + approved, prior[5] + payout,
                           prior[6] + revenue)

    def count_ip(self, key: IpKey) -> None:
        if key in self.ip_today:
            self.ip_today[key] += 1
        self.ip_added[key] = self.ip_added.get(key, 0) + 1


class RunMemory(threading.local):
    """The current thread's run memory; ``None`` outside a run (nothing is remembered)."""

    current: Remembered | None = None
