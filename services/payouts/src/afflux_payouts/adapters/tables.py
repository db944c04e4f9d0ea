"""The payouts projection's tables, each declared once (``afflux_plumbing.tables.Table``).

Every row is written by the fold from a record of the log, with the times that
record gives (no ``now()``): ``happened_at`` (when the fact happened: a conversion,
a review, an adjustment) and ``known_on`` (the envelope's ``occurred_at``: when its
producer recorded it, so it was on the log no earlier), and where on the log it was
read (``recorded_from``: ``topic#partition@offset``, and its ``log_offset``). A
balance ``as_of`` T counts the facts that happened by T; ``as_known_on`` K the ones
recorded by K; a statement is re-derived from the rows up to its log position.

- ``ledger_entries``: each conversion's commission as it stands now (its amount and
  bucket, and what attribution's decision opened it with in ``decided_*``);
- ``rejections``: conversions attribution rejected, with the reason;
- ``commission_changes``: one row per attribution record that gave a conversion its
  status and amount (``pending``/``accrued``/``void``; ``amount`` what it earns: 0
  when void). A conversion's state at T is its latest row (by log offset: one
  partner's records share a partition) that happened by T;
- ``adjustments``: BalanceAdjusted;
- ``statements`` / ``statement_lines``: StatementIssued, with the fold's verdict
  (``refused`` and its ``refusal``), StatementHeld / StatementReleased (``on_hold``
  and its ``hold_reason``) and StatementPaid on the statement's row. A payable, held
  or paid statement *claims* its lines;
- ``partner_terms``: the billing terms closes need;
- ``payout_profiles``: each partner's last tax and payment profile (its completeness in
  clear, its details sealed), which decides a hold;
- ``payment_runs`` / ``payment_run_payments``: PaymentRunCreated and PaymentRunConfirmed,
  and each statement a run pays (``pending``, ``paid`` by a StatementPaid with the run's
  id, ``failed`` by a StatementPaymentFailed, whose reason is also the statement's
  ``payment_failure`` until it is paid);
- ``invoices``: InvoiceIssued (invoices and credit notes, their figures in clear and their
  document sealed);
- ``fx_rates``: every FxRateSet as recorded (the last of a pair and day, by log offset: a
  pair's records share a partition, is the one in force); a StatementConverted sets its
  statement's ``paid_currency`` / ``paid_total`` and each line's ``paid_amount``, rate,
  pair and rate day.
"""

from __future__ import annotations

from afflux_plumbing.tables import Table

BUCKETS = "('pending', 'accrued', 'payable', 'paid', 'void')"

LEDGER = Table("ledger_entries", (
    "conversion_id text",
    "partner_id text NOT NULL",
    "offer_id text NOT NULL",
    "amount numeric NOT NULL",
    "currency text NOT NULL",
    f"bucket text NOT NULL CHECK (bucket IN {BUCKETS})",
    "converted_at timestamptz NOT NULL",
    "recorded_from text NOT NULL",
    "event_id uuid NOT NULL",
    "decided_amount numeric",
    "decided_bucket text",
), key=("conversion_id",))

REJECTIONS = Table("rejections", (
    "conversion_id text",
    "partner_id text",
    "offer_id text",
    "reason text NOT NULL",
    "message text NOT NULL",
    "converted_at timestamptz NOT NULL",
    "recorded_from text NOT NULL",
    "event_id uuid NOT NULL",
), key=("conversion_id",))

CHANGES = Table("commission_changes", (
    "event_id uuid",
    "conversion_id text NOT NULL",
    "partner_id text NOT NULL",
    "offer_id text NOT NULL",
    "currency text NOT NULL",
    "status text NOT NULL CHECK (status IN ('pending', 'accrued', 'void'))",
    "amount numeric NOT NULL",
    "happened_at timestamptz NOT NULL",
    "known_on timestamptz NOT NULL",
    "log_offset bigint NOT NULL",
    "recorded_from text NOT NULL",
), key=("event_id",))

ADJUSTMENTS = Table("adjustments", (
    "adjustment_id text",
    "partner_id text NOT NULL",
    "currency text NOT NULL",
    "amount numeric NOT NULL",
    "reason text NOT NULL",
    "note text",
    "happened_at timestamptz NOT NULL",
    "known_on timestamptz NOT NULL",
    "event_id uuid NOT NULL",
    "log_offset bigint",
    "recorded_from text",
), key=("adjustment_id",))

STATEMENT_STATUSES = "('payable', 'carried_over', 'paid', 'refused', 'on_hold')"

STATEMENTS = Table("statements", (
    "statement_id text",
    "partner_id text NOT NULL",
    "currency text NOT NULL",
    "period_start timestamptz",
    "period_end timestamptz NOT NULL",
    f"status text NOT NULL CHECK (status IN {STATEMENT_STATUSES})",
    "total numeric NOT NULL",
    "carried_over numeric NOT NULL",
    "minimum_payout numeric NOT NULL",
    "frequency text",
    "closed_by text NOT NULL",
    "log_position text NOT NULL",
    "digest text NOT NULL",
    "issued_at timestamptz NOT NULL",
    "known_on timestamptz NOT NULL",
    "event_id uuid NOT NULL",
    "paid_at timestamptz",
    "paid_known_on timestamptz",
    "reference text",
    "refusal text",
    "log_offset bigint",
    "recorded_from text",
    "hold_reason text",
    "payment_failure text",
    "paid_currency text",
    "paid_total numeric",
), key=("statement_id",))

LINES = Table("statement_lines", (
    "statement_id text",
    "kind text",
    "ref text",
    "partner_id text NOT NULL",
    "currency text NOT NULL",
    "offer_id text",
    "happened_at timestamptz NOT NULL",
    "amount numeric NOT NULL",
    "paid_amount numeric",
    "rate_pair text",
    "rate numeric",
    "rate_day date",
), key=("statement_id", "kind", "ref"))

TERMS = Table("partner_terms", (
    "partner_id text",
    "name text NOT NULL",
    "status text NOT NULL",
    "billing_currency text",
    "frequency text",
    "minimum_payout numeric",
    "method text",
    "event_id uuid NOT NULL",
    "conversion text NOT NULL DEFAULT 'none'",
), key=("partner_id",))

PROFILES = Table("payout_profiles", (
    "partner_id text",
    "complete boolean NOT NULL",
    "missing text NOT NULL",
    "country text",
    "tax_form text",
    "payment_method text",
    "sealed text NOT NULL",
    "event_id uuid NOT NULL",
), key=("partner_id",))

RUNS = Table("payment_runs", (
    "payment_run_id text",
    "method text NOT NULL",
    "status text NOT NULL CHECK (status IN ('open', 'confirmed'))",
    "due_by timestamptz",
    "created_at timestamptz NOT NULL",
    "confirmed_at timestamptz",
    "event_id uuid NOT NULL",
), key=("payment_run_id",))

RUN_PAYMENTS = Table("payment_run_payments", (
    "payment_run_id text",
    "statement_id text",
    "partner_id text NOT NULL",
    "currency text NOT NULL",
    "amount numeric NOT NULL",
    "status text NOT NULL CHECK (status IN ('pending', 'paid', 'failed'))",
    "reason text",
), key=("payment_run_id", "statement_id"))

INVOICES = Table("invoices", (
    "invoice_number text",
    "kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note'))",
    "statement_id text NOT NULL",
    "partner_id text NOT NULL",
    "issuer text NOT NULL",
    "currency text NOT NULL",
    "net numeric NOT NULL",
    "vat numeric NOT NULL",
    "total numeric NOT NULL",
    "vat_treatment text NOT NULL",
    "corrects text",
    "sealed text NOT NULL",
    "issued_at timestamptz NOT NULL",
    "event_id uuid NOT NULL",
), key=("invoice_number",))

FX_RATES = Table("fx_rates", (
    "event_id uuid",
    "base text NOT NULL",
    "quote text NOT NULL",
    "day date NOT NULL",
    "rate numeric NOT NULL",
    "source text NOT NULL",
    "set_at timestamptz NOT NULL",
    "known_on timestamptz NOT NULL",
    "log_offset bigint NOT NULL",
    "recorded_from text NOT NULL",
), key=("event_id",))

TABLES = (LEDGER, REJECTIONS, CHANGES, ADJUSTMENTS, STATEMENTS, LINES, TERMS, PROFILES, RUNS, RUN_PAYMENTS,
          INVOICES, FX_RATES)
"""The projection's tables (the rest of the schema is the event store's bookkeeping)."""


def _widened_check(table: str, column: str, values: str, newest: str) -> str:
    """A table created before ``newest`` was allowed in ``column`` learns it (``CREATE
    TABLE IF NOT EXISTS`` leaves an existing CHECK as it was)."""
    constraint = f"{table}_{column}_check"
    return f"""DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = '{{schema}}.{table}'::regclass AND conname = '{constraint}'
                     AND pg_get_constraintdef(oid) NOT LIKE '%{newest}%') THEN
            ALTER TABLE {{schema}}.{table} DROP CONSTRAINT {constraint};
            ALTER TABLE {{schema}}.{table} ADD CONSTRAINT {constraint} CHECK ({column} IN {values});
        END IF;
    END $$"""


VIEW_DDL = [
    *(ddl for table in TABLES for ddl in table.ddl()),
    # Leads with partner_id (balances) and keeps the listing's order (keyset pagination).
    "CREATE INDEX IF NOT EXISTS ledger_entries_by_partner "
    "ON {schema}.ledger_entries (partner_id, converted_at, conversion_id)",
    "CREATE INDEX IF NOT EXISTS rejections_by_partner ON {schema}.rejections (partner_id)",
    "CREATE INDEX IF NOT EXISTS commission_changes_by_partner "
    "ON {schema}.commission_changes (partner_id, conversion_id, log_offset)",
    "CREATE INDEX IF NOT EXISTS adjustments_by_partner ON {schema}.adjustments (partner_id)",
    "CREATE INDEX IF NOT EXISTS statements_by_partner ON {schema}.statements (partner_id, period_end)",
    "CREATE INDEX IF NOT EXISTS statement_lines_by_ref ON {schema}.statement_lines (ref, kind)",
    "CREATE INDEX IF NOT EXISTS statement_lines_by_partner ON {schema}.statement_lines (partner_id)",
    "CREATE INDEX IF NOT EXISTS fx_rates_by_pair ON {schema}.fx_rates (base, quote, day, log_offset)",
    "CREATE INDEX IF NOT EXISTS invoices_by_statement ON {schema}.invoices (statement_id, issued_at)",
    "CREATE INDEX IF NOT EXISTS payment_run_payments_by_statement "
    "ON {schema}.payment_run_payments (statement_id)",
    _widened_check("ledger_entries", "bucket", BUCKETS, "void"),
    _widened_check("statements", "status", STATEMENT_STATUSES, "on_hold"),
    # Never written since reviews move commissions in place (kept empty until now).
    "DROP TABLE IF EXISTS {schema}.corrections",
]
