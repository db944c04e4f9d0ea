"""The subscriber's own state: each partner's conversions, in SQLite, applied once per event_id.

Kafka delivers at least once (a redelivery after a crash or a rebalance, a redriven
dead letter, a producer's resend), so the event_id of everything applied is kept in
the same transaction as the change it made: a second delivery finds it and changes
nothing. That is all "effectively once" takes on the subscriber's side.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from afflux_contracts import ConversionAttributed, ConversionStatusChanged, Envelope, Event, StatusChange

SCHEMA = """
CREATE TABLE IF NOT EXISTS applied_events (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS conversions (
    conversion_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL,
    status TEXT NOT NULL,
    payout TEXT NOT NULL,
    currency TEXT NOT NULL
);
"""
EARNING = ("approved", "adjusted")
"""Statuses whose payout the partner earns."""


@dataclass(frozen=True)
class Earnings:
    """What one partner has earned in one currency, from approved conversions."""

    partner_id: str
    currency: str
    conversions: int
    payout: Decimal


class Ledger:
    """Conversions by partner, fed by ``apply`` (one SQLite transaction per event)."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def apply(self, envelope: Envelope[Event]) -> bool:
        """Apply one event; ``False`` when its event_id was applied before (a duplicate)."""
        with self._transaction():
            seen = self._db.execute("INSERT OR IGNORE INTO applied_events VALUES (?)",
                                    (str(envelope.event_id),))
            if seen.rowcount == 0:
                return False
            payload = envelope.payload
            if isinstance(payload, ConversionAttributed):
                self._attributed(payload)
            elif isinstance(payload, ConversionStatusChanged):
                self._status_changed(payload)
            return True

    def _attributed(self, event: ConversionAttributed) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO conversions VALUES (?, ?, ?, ?, ?)",
            (event.conversion_id, event.partner_id, event.status.value,
             str(event.payout.amount), event.payout.currency))

    def _status_changed(self, event: ConversionStatusChanged) -> None:
        status = "approved" if event.status is StatusChange.APPROVED else event.status.value
        self._db.execute(
            "UPDATE conversions SET status = ?, payout = ?, currency = ? WHERE conversion_id = ?",
            (status, str(event.payout.amount), event.payout.currency, event.conversion_id))

    def earnings(self, partner_id: str) -> list[Earnings]:
        """The partner's earnings per currency (sums in Decimal, never float)."""
        rows = self._db.execute(
            "SELECT currency, payout FROM conversions WHERE partner_id = ? AND status IN (?, ?)",
            (partner_id, *EARNING)).fetchall()
        totals: dict[str, tuple[int, Decimal]] = {}
        for currency, payout in rows:
            count, total = totals.get(currency, (0, Decimal(0)))
            totals[currency] = (count + 1, total + Decimal(payout))
        return [Earnings(partner_id, currency, count, total)
                for currency, (count, total) in sorted(totals.items())]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
