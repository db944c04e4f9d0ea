"""Any split of the log into runs leaves the gateway's tables exactly as applying each
record alone does: the same handlers serve both (a lone record is a run of one).

One history touches every handler: partners, keys and offers created, changed and
revoked; valid, invalid, re-published and redelivered clicks; conversions attributed,
rejected, approved on appeal, reviewed (approved, adjusted, reversed); priced clicks and
thousands (one re-published); statements issued and paid; postbacks delivered and failed.
Each topic is applied in turn (as its own consumer would), its records cut into runs at
points hypothesis draws; the other store applies the same records one at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from gateway_fixtures import (
    DAY,
    attributed,
    click,
    key_issued,
    key_revoked,
    new_key,
    offer,
    partner,
    rejected,
    wrap,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    POSTBACKS,
    TRACKING,
    Billing,
    ClickOutcome,
    ClickPriced,
    ConversionStatus,
    ConversionStatusChanged,
    Envelope,
    Event,
    ImpressionsPriced,
    Money,
    OfferStatus,
    OfferStatusChanged,
    PartnerPostbackDelivered,
    PartnerPostbackFailed,
    PartnerStatus,
    PartnerStatusChanged,
    PartnerUpdated,
    RejectionReason,
    RelationshipSet,
    StatementIssued,
    StatementLine,
    StatementPaid,
    StatusChange,
    Topic,
    Visibility,
)
from afflux_contracts.attribution import Appeal
from afflux_contracts.payouts import LineKind, StatementStatus, statement_digest
from afflux_gateway.adapters import tables
from afflux_gateway.adapters.views import GatewayStore, PostgresViews
from afflux_gateway.application.projection import Projection
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, Record, record_of

P, OFFER = "p-runs", "o-runs"


def review(
    conversion_id: str, status: StatusChange, payout: str, reason: str | None = None
) -> Envelope[Event]:
    return wrap(
        ConversionStatusChanged(
            conversion_id=conversion_id,
            partner_id=P,
            offer_id=OFFER,
            status=status,
            previous_status=ConversionStatus.APPROVED,
            payout=Money(amount=Decimal(payout), currency="USD"),
            reason=reason,
            changed_at=DAY + timedelta(hours=2),
        )
    )


def statement(statement_id: str, conversion_id: str) -> Envelope[Event]:
    line = StatementLine(
        kind=LineKind.COMMISSION, ref=conversion_id, offer_id=OFFER, happened_at=DAY, amount=Decimal("5.00")
    )
    end = DAY + timedelta(days=1)
    return wrap(
        StatementIssued(
            statement_id=statement_id,
            partner_id=P,
            currency="USD",
            period_end=end,
            status=StatementStatus.PAYABLE,
            lines=(line,),
            total=Decimal("5.00"),
            issued_at=end,
            digest=statement_digest(statement_id, P, "USD", end, [line]),
        )
    )


def history() -> dict[Topic, list[Envelope[Event]]]:
    """Per topic, in log order; a redelivered record appears twice (the same event_id)."""
    key, other_key = new_key(), new_key()
    issued, other = key_issued(P, key, "key-1"), key_issued(P, other_key, "key-2")
    created = partner(P, "Runs")
    updated = wrap(
        PartnerUpdated(
            partner_id=P, name="Runs renamed", email="runs@example.com", billing=Billing(currency="USD")
        )
    )
    clicks = [
        click(f"t-{n}", OFFER, P, sub1=f"s{n % 3}", unique=n % 2 == 0, at=DAY + timedelta(minutes=7 * n),
              **({"country": ("DE", "US")[n % 2], "device": ("mobile", "desktop", "tablet")[n % 3]}
                 if n < 6 else {}))
        for n in range(8)
    ]
    invalid = wrap(
        clicks[0].payload.model_copy(update={"transaction_id": "t-invalid", "outcome": ClickOutcome.BOT})
    )
    priced = wrap(
        ClickPriced(
            transaction_id="t-1",
            partner_id=P,
            offer_id=OFFER,
            priced_at=DAY,
            clicked_at=DAY,
            payout=Money(amount=Decimal("0.25"), currency="USD"),
        )
    )
    thousand = wrap(
        ImpressionsPriced(
            partner_id=P,
            offer_id=OFFER,
            block=1,
            last_impression_id="i-1",
            last_impressed_at=DAY,
            priced_at=DAY,
            payout=Money(amount=Decimal("5.00"), currency="USD"),
        )
    )
    appeal = Appeal(rejected_reason=RejectionReason.FRAUD_TOO_FAST, by="admin", reason="a real customer")
    decisions = [  # consecutive records of one handler (a segment) and interleaved ones
        attributed("t-0", OFFER, P, conversion_id="c-0"),
        attributed("t-0", OFFER, P, conversion_id="c-0"),
        attributed("t-2", OFFER, P, conversion_id="c-2", status=ConversionStatus.PENDING, payout="7.00"),
        rejected("t-3", OFFER, P, conversion_id="c-3", reason=RejectionReason.FRAUD_TOO_FAST),
        priced,
        wrap(priced.payload),
        review("c-2", StatusChange.ADJUSTED, "6.50"),
        attributed("t-3", OFFER, P, conversion_id="c-3", payout="4.20", appeal=appeal, sub1="s0"),
        attributed("t-0", OFFER, P, conversion_id="c-0"),
        review("c-0", StatusChange.REVERSED, "0", "refund"),
        review("c-0", StatusChange.ADJUSTED, "1.00"),
        thousand,
        rejected("t-4", OFFER, P, conversion_id="c-4"),
        rejected("t-4", OFFER, P, conversion_id="c-4"),
        attributed("t-5", OFFER, P, conversion_id="c-5", status=ConversionStatus.PENDING),
        review("c-5", StatusChange.APPROVED, "5.00"),
    ]
    issued_statement = statement("st-1", "c-5")
    return {
        PARTNERS: [
            created,
            updated,
            issued,
            issued,
            other,
            offer(OFFER, Visibility.PRIVATE),
            wrap(RelationshipSet(offer_id=OFFER, partner_id=P, approved=True)),
            key_revoked(P, "key-2"),
            wrap(PartnerStatusChanged(partner_id=P, status=PartnerStatus.SUSPENDED)),
            wrap(OfferStatusChanged(offer_id=OFFER, status=OfferStatus.PAUSED)),
            offer(OFFER, Visibility.PUBLIC, amount="6.00", name="Renamed"),
            wrap(RelationshipSet(offer_id=OFFER, partner_id=P, approved=False)),
            wrap(PartnerStatusChanged(partner_id=P, status=PartnerStatus.ACTIVE)),
        ],
        TRACKING: [*clicks[:3], invalid, clicks[1], wrap(clicks[2].payload), *clicks[3:]],
        ATTRIBUTION: decisions,
        PAYOUTS: [
            issued_statement,
            issued_statement,
            wrap(
                StatementPaid(
                    statement_id="st-1",
                    partner_id=P,
                    currency="USD",
                    amount=Decimal("5.00"),
                    reference="wire-1",
                    paid_at=DAY + timedelta(days=2),
                )
            ),
            wrap(
                StatementPaid(
                    statement_id="st-1",
                    partner_id=P,
                    currency="USD",
                    amount=Decimal("5.00"),
                    reference="wire-2",
                    paid_at=DAY + timedelta(days=3),
                )
            ),
        ],
        POSTBACKS: [
            wrap(
                PartnerPostbackFailed(
                    delivery_id="d-1",
                    conversion_id="c-0",
                    partner_id=P,
                    offer_id=OFFER,
                    url="https://p.example/?k=***",
                    attempts=3,
                    error="timeout",
                    failed_at=DAY,
                )
            ),
            wrap(
                PartnerPostbackDelivered(
                    delivery_id="d-1",
                    conversion_id="c-0",
                    partner_id=P,
                    offer_id=OFFER,
                    url="https://p.example/?k=***",
                    attempts=4,
                    status_code=200,
                    delivered_at=DAY + timedelta(minutes=1),
                )
            ),
            wrap(
                PartnerPostbackDelivered(
                    delivery_id="d-2",
                    conversion_id="c-2",
                    partner_id=P,
                    offer_id=OFFER,
                    url="https://p.example/?k=***",
                    attempts=1,
                    status_code=204,
                    delivered_at=DAY,
                )
            ),
        ],
    }


HISTORY = history()


def records_of(topic: Topic) -> list[Record[Any]]:
    return [
        record_of(envelope, Position(topic.name, 0, offset)) for offset, envelope in enumerate(HISTORY[topic])
    ]


def cut(records: Sequence[Record[Any]], points: set[int]) -> Iterator[list[Record[Any]]]:
    start = 0
    for end in [*sorted(p for p in points if 0 < p < len(records)), len(records)]:
        yield list(records[start:end])
        start = end


def tables_of(store: GatewayStore) -> dict[str, list[tuple[Any, ...]]]:
    dumped = {}
    for table in tables.TABLES:
        order = sql.SQL(", ").join(sql.Identifier(name) for name in table.column_names)
        rows = store.query(sql.SQL("SELECT * FROM {} ORDER BY {}").format(table.ident(store.schema), order))
        dumped[table.name] = [tuple(row.values()) for row in rows]
    return dumped


def applied(database_url: str, splits: dict[str, set[int]] | None) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after the whole history, each topic cut at ``splits`` (None: every record alone)."""
    store = open_store(GatewayStore, database_url, f"gateway_{secrets.token_hex(4)}")
    try:
        handlers = Handlers.of(Projection(PostgresViews(store)))
        for topic in HISTORY:
            records = records_of(topic)
            points = set(range(len(records))) if splits is None else splits[topic.name]
            for run in cut(records, points):
                store.apply_run(run, handlers)
        return tables_of(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def one_by_one(infra: Any) -> tuple[str, dict[str, list[tuple[Any, ...]]]]:
    database_url = infra.new_database()
    return database_url, applied(database_url, None)


def test_one_record_at_a_time_gives_the_tables_the_rules_say(
    one_by_one: tuple[str, dict[str, list[tuple[Any, ...]]]],
) -> None:
    """What the history leaves, so a split that changed nothing cannot pass unnoticed."""
    _, found = one_by_one
    conversions = {row[0]: row for row in found["conversions"]}
    columns = tables.CONVERSIONS.column_names
    status, payout, kind = (columns.index(name) for name in ("status", "payout", "kind"))
    assert {cid: (row[kind], row[status], row[payout]) for cid, row in conversions.items()} == {
        "c-0": ("conversion", "reversed", Decimal("0")),
        "c-2": ("conversion", "approved", Decimal("6.50")),
        "c-3": ("conversion", "approved", Decimal("4.20")),
        "c-4": ("conversion", "rejected", None),
        "c-5": ("conversion", "approved", Decimal("5.00")),
        "click:t-1": ("cpc", "approved", Decimal("0.25")),
        f"cpm:{OFFER}:{P}:1": ("cpm", "approved", Decimal("5.00")),
    }
    totals = found["totals"]
    figures = [tables.TOTALS.column_names.index(name) for name in tables.FIGURES]
    summed = [sum(row[i] for row in totals) for i in figures]
    assert summed == [
        8,
        4,
        3,
        Decimal("6.50") + Decimal("4.20") + Decimal("5.00") + Decimal("5.25"),
        Decimal("24.00"),
    ]
    assert [row[0] for row in found["api_keys"]] == ["key-1", "key-2"] and found["api_keys"][1][
        -1
    ] is not None
    assert [(row[0], row[4], row[8]) for row in found["statements"]] == [("st-1", "paid", "wire-2")]


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    splits=st.fixed_dictionaries(
        {topic.name: st.sets(st.integers(1, len(HISTORY[topic]) - 1)) for topic in HISTORY}
    )
)
def test_any_split_into_runs_leaves_the_tables_of_one_record_at_a_time(
    one_by_one: tuple[str, dict[str, list[tuple[Any, ...]]]], splits: dict[str, set[int]]
) -> None:
    database_url, expected = one_by_one
    assert applied(database_url, splits) == expected
