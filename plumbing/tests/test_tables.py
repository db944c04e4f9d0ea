"""``Table``: one declaration gives the DDL and the batch statements, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from afflux_plumbing.tables import Column, Table, keys_param

LINES = Table("lines", ("line_id text", "partner_id text NOT NULL", "amount numeric NOT NULL DEFAULT 0",
                        "at timestamptz", "n bigint NOT NULL DEFAULT 0"), key=("line_id",))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[dict[str, object]]]:
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS tables_test")
        connection.execute("DROP TABLE IF EXISTS tables_test.lines")
        for ddl in LINES.ddl():
            connection.execute(ddl.format(schema="tables_test"))
        yield connection


def test_a_column_spec_is_split_into_name_bare_type_and_constraints() -> None:
    parsed = Column.parse("amount numeric NOT NULL DEFAULT 0")
    assert parsed == Column("amount", "numeric", "NOT NULL DEFAULT 0")
    assert Column.parse("ratio double precision") == Column("ratio", "double precision", "")


def test_many_rows_insert_as_one_parameter_keeping_the_scale_of_amounts(conn: psycopg.Connection) -> None:
    at = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    rows = [{"line_id": "a", "partner_id": "p", "amount": Decimal("5.00"), "at": at, "n": 1},
            {"line_id": "b", "partner_id": "p", "amount": Decimal("0.10"), "at": None, "n": 2}]
    write = LINES.write(LINES.insert("tables_test"), rows)
    assert write is not None and len(write.params) == 1
    conn.execute(write.statement, write.params)
    conn.execute(write.statement, write.params)  # a redelivery changes nothing

    found = conn.execute("SELECT line_id, amount::text AS amount, at FROM tables_test.lines ORDER BY 1")
    assert found.fetchall() == [{"line_id": "a", "amount": "5.00", "at": at},
                                {"line_id": "b", "amount": "0.10", "at": None}]


def test_an_upsert_with_an_expression_adds_to_the_existing_row(conn: psycopg.Connection) -> None:
    statement = LINES.upsert("tables_test", {"n": "{table}.n + excluded.n"},
                             columns=("line_id", "partner_id", "n"))
    for _ in range(3):
        write = LINES.write(statement, [{"line_id": "a", "partner_id": "p", "n": 2}])
        assert write is not None
        conn.execute(write.statement, write.params)

    assert conn.execute("SELECT n FROM tables_test.lines").fetchall() == [{"n": 6}]


def test_select_update_and_delete_match_many_keys_at_once(conn: psycopg.Connection) -> None:
    rows = [{"line_id": k, "partner_id": "p", "amount": Decimal(i)} for i, k in enumerate("abcd")]
    write = LINES.write(LINES.insert("tables_test", ("line_id", "partner_id", "amount")), rows)
    assert write is not None
    conn.execute(write.statement, write.params)

    moved = LINES.write(LINES.update("tables_test", ("amount",)),
                        [{"line_id": "b", "amount": Decimal("9.50")}])
    assert moved is not None
    conn.execute(moved.statement, moved.params)
    conn.execute(LINES.delete("tables_test"), keys_param(["d"], ("line_id",)))
    selected = conn.execute(LINES.select("tables_test", columns=("line_id", "amount"), order_by=("line_id",)),
                            keys_param(["a", "b", "b", "d"], ("line_id",))).fetchall()

    assert selected == [{"line_id": "a", "amount": Decimal("0")},
                        {"line_id": "b", "amount": Decimal("9.50")}]
