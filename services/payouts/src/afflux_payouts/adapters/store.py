"""The payouts store on PostgreSQL: the application (``application/payouts.py``) with its
view tables created and what it needs bound to them. Open it with
``open_store(PayoutsStore, database_url, schema)`` (any schema: a replay opens a scratch one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from afflux_payouts.adapters.invoices_sql import InvoicesSql
from afflux_payouts.adapters.ledger_sql import LedgerSql
from afflux_payouts.adapters.reads_sql import ReadsSql
from afflux_payouts.adapters.runs_sql import RunsSql
from afflux_payouts.adapters.statements_sql import StatementsSql
from afflux_payouts.adapters.tables import TABLES, VIEW_DDL
from afflux_payouts.adapters.terms_sql import TermsSql
from afflux_payouts.application.payouts import Payouts


class PayoutsStore(Payouts):
    view_ddl: ClassVar = VIEW_DDL
    projection: ClassVar = tuple(table.name for table in TABLES)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.ledger = LedgerSql(self)
        self.terms = TermsSql(self)
        self.books = self.desk = StatementsSql(self)
        self.reads = ReadsSql(self)
        self.runs = RunsSql(self)
        self.invoices = InvoicesSql(self)
