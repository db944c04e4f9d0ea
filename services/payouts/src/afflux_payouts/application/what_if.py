"""What-if: re-price a window's conversions with other terms in a shadow projection, and
report what each partner would hold instead.

The log is folded from offset 0 into a scratch schema by the payouts service's own
fold, up to the live projection's positions, with one change on the way: each
ConversionAttributed of the offer (and partner) converted in [from, to) carries
the payout the given terms price it at, by attribution's own pricing rule (``Price``,
which the entrypoint supplies: payouts never prices by itself), and an approval of
such a conversion carries it too (an advertiser's adjustment keeps its amount). The
report compares the shadow's balances with a copy of the live ones taken at the same
positions. The live ledger is only read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from afflux_contracts import (
    ConversionAttributed,
    ConversionStatusChanged,
    Envelope,
    Event,
    Money,
    StatusChange,
    Terms,
)
from afflux_payouts.application.payouts import Payouts
from afflux_payouts.application.replay import (
    Progress,
    ReplayOptions,
    folded_shadow,
    opened_shadow,
    payouts_of,
)
from afflux_payouts.application.replay_fold import FoldFactory, FoldReport
from afflux_payouts.application.shadows import Replaying

Price = Callable[[Terms, Decimal | None, str], Decimal | None]
"""What ``terms`` pay for a conversion of a sale amount in a currency (None: they cannot
price it, e.g. percentage terms without a sale amount)."""


@dataclass(frozen=True)
class Scenario:
    """Which conversions to re-price, and with what."""

    offer_id: str
    terms: Terms
    start: datetime
    end: datetime
    partner_id: str | None = None

    def covers(self, decision: ConversionAttributed) -> bool:
        return (decision.offer_id == self.offer_id and self.start <= decision.converted_at < self.end
                and (self.partner_id is None or decision.partner_id == self.partner_id))


@dataclass
class Repricing:
    """The transform a what-if folds the log through, and what it changed."""

    scenario: Scenario
    price: Price
    repriced: dict[str, tuple[str, str, Decimal, Decimal]] = field(default_factory=dict)
    """conversion_id -> (partner_id, currency, payout on the log, what-if payout)."""
    unpriceable: list[str] = field(default_factory=list)
    """Conversions the terms cannot price (percentage terms, no sale amount): kept as they are."""

    def __call__(self, envelope: Envelope[Event]) -> Envelope[Event]:
        payload = envelope.payload
        if isinstance(payload, ConversionAttributed) and self.scenario.covers(payload):
            return self._reprice(envelope, payload)
        if (isinstance(payload, ConversionStatusChanged) and payload.status is StatusChange.APPROVED
                and payload.conversion_id in self.repriced):
            new = self.repriced[payload.conversion_id][3]
            return _with_payload(envelope, payload.model_copy(
                update={"payout": Money(amount=new, currency=payload.payout.currency)}))
        return envelope

    def _reprice(self, envelope: Envelope[Event], decision: ConversionAttributed) -> Envelope[Event]:
        currency = decision.payout.currency
        new = self.price(self.scenario.terms, decision.sale_amount, currency)
        if new is None:
            self.unpriceable.append(decision.conversion_id)
            return envelope
        if decision.conversion_id not in self.repriced:  # the first decision is the one the ledger keeps
            old = decision.payout.amount
            self.repriced[decision.conversion_id] = (decision.partner_id, currency, old, new)
        return _with_payload(envelope, decision.model_copy(
            update={"payout": Money(amount=new, currency=currency)}))


def _with_payload(envelope: Envelope[Event], payload: Event) -> Envelope[Event]:
    return envelope.model_copy(update={"payload": payload})


@dataclass(frozen=True)
class ReportLine:
    partner_id: str
    currency: str
    conversions: int
    current_payout: Decimal
    what_if_payout: Decimal
    current_balance: Decimal
    what_if_balance: Decimal

    @property
    def difference(self) -> Decimal:
        return self.what_if_balance - self.current_balance

    def row(self) -> tuple[str, ...]:
        return (self.partner_id, self.currency, str(self.conversions), str(self.current_payout),
                str(self.what_if_payout), str(self.current_balance), str(self.what_if_balance),
                str(self.difference))


@dataclass
class WhatIf:
    lines: list[ReportLine]
    report: FoldReport
    unpriceable: list[str]


async def what_if_report(replaying: Replaying, live_schema: str, factory: FoldFactory, scenario: Scenario,
                         price: Price, *, keep: bool = False, progress: Progress | None = None) -> WhatIf:
    """Fold the log re-priced by ``scenario`` into a shadow and compare its balances with
    the live ones at the same positions (the live schema is only read). ``LookupError``
    when there is no live projection."""
    repricing = Repricing(scenario, price)
    async with opened_shadow(replaying, factory, "whatif", keep=keep) as shadow:
        report, _ = await folded_shadow(replaying, live_schema, shadow, ReplayOptions(), transform=repricing,
                                        progress=progress)
        copied = await asyncio.to_thread(factory, shadow.copy)
        try:
            lines = await asyncio.to_thread(_lines, repricing, payouts_of(copied), payouts_of(shadow.built))
        finally:
            await asyncio.to_thread(copied.close)
    return WhatIf(lines, report, repricing.unpriceable)


def _lines(repricing: Repricing, live: Payouts, shadow: Payouts) -> list[ReportLine]:
    """One line per (partner, currency) with re-priced conversions."""
    groups: dict[tuple[str, str], list[tuple[Decimal, Decimal]]] = {}
    for partner, currency, old, new in repricing.repriced.values():
        groups.setdefault((partner, currency), []).append((old, new))
    return [ReportLine(partner, currency, len(payouts), sum((o for o, _ in payouts), Decimal(0)),
                       sum((n for _, n in payouts), Decimal(0)), _total(live, partner, currency),
                       _total(shadow, partner, currency))
            for (partner, currency), payouts in sorted(groups.items())]


def _total(store: Payouts, partner_id: str, currency: str) -> Decimal:
    """What the partner holds in ``currency`` over every bucket (pending, accrued, payable, paid)."""
    balance = store.reads.balances(partner_id).get(currency)
    return Decimal(0) if balance is None else sum((Decimal(v) for v in balance.formatted().values()),
                                                  Decimal(0))
