"""The payouts admin API: balances and commissions of a partner (statements: see
``statements_http.py``).

Payouts does not own partners: it only knows the partners that earned
something. So an unknown partner_id is answered like a partner with nothing
earned yet (200, empty), never 404: telling the two apart is the partners
service's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import FastAPI, Query
from pydantic import BaseModel

from afflux_contracts import utc_now
from afflux_payouts.application.fx_rates import FxRates
from afflux_payouts.application.payouts import Payouts
from afflux_payouts.application.reads import PageKey
from afflux_payouts.application.statements import Statements
from afflux_payouts.domain.balance import Balance, format_money, formatted_balances
from afflux_payouts.domain.fx import MissingRate
from afflux_payouts.domain.ledger import Bucket, LedgerEntry
from afflux_payouts.entrypoints.fx_http import add_fx_routes, missing_rate, total_json
from afflux_payouts.entrypoints.statements_http import add_statement_routes, csv_response, instant, text
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.cursor import after_param, encode_cursor
from afflux_plumbing.http import ReadinessCheck, admin_auth, service_app

CSV_PAGE = 500
AS_OF = Query(None, description="facts that happened by then")
AS_KNOWN_ON = Query(None, description="records on the log by then")
TOTAL_IN = Query(None, pattern=r"^[A-Za-z]{3}$", description="also total every currency in this one")


class BalanceOut(BaseModel):
    """Money in one currency by bucket, as decimal strings in the currency's minor units."""

    accrued: str
    pending: str
    payable: str
    paid: str


class PartnerBalances(BaseModel):
    partner_id: str
    balances: dict[str, BalanceOut]
    total: dict[str, Any] | None = None
    """With ``?currency=``: each bucket totalled in that currency at the rates recorded."""


class CommissionOut(BaseModel):
    conversion_id: str
    offer_id: str
    amount: str
    currency: str
    status: str
    converted_at: str


class CommissionsPage(BaseModel):
    partner_id: str
    commissions: list[CommissionOut]
    next: str | None


def balance_total(fx: FxRates, balances: Mapping[str, Balance], currency: str, day: date) -> dict[str, Any]:
    """Each bucket of ``balances`` totalled in ``currency`` at the rates in force on ``day``."""
    found: dict[str, Any] = {"currency": currency, "rate_day": day.isoformat(), "rates": {}}
    for bucket in (Bucket.ACCRUED, Bucket.PENDING, Bucket.PAYABLE, Bucket.PAID):
        try:
            total = fx.total({code: getattr(b, bucket.value) for code, b in balances.items()}, currency, day)
        except MissingRate as error:
            raise missing_rate(error, "currency") from error
        found[bucket.value] = format_money(total.total, currency)
        found["rates"] = total_json(total)["rates"]
    return found


def commission_status(entry: LedgerEntry, claims: dict[str, tuple[Decimal, Decimal]]) -> str:
    """An approved commission is ``payable`` once statements claimed all it earns, ``paid``
    once they were paid; until then (or for what it earns beyond their claims) ``accrued``."""
    claimed, paid = claims.get(entry.conversion_id, (Decimal(0), Decimal(0)))
    if entry.bucket is not Bucket.ACCRUED or claimed != entry.amount:
        return entry.bucket.value
    return Bucket.PAID.value if paid == claimed else Bucket.PAYABLE.value


def create_app(store: Payouts, readiness: ReadinessCheck, admin_token: str | Credentials,
               statements: Statements | None = None) -> FastAPI:
    app = service_app("Afflux payouts", readiness)
    admin = [admin_auth(admin_token)]
    add_statement_routes(app, statements or Statements(store), admin)
    fx = FxRates(store)
    add_fx_routes(app, fx, admin)

    @app.get("/v1/partners/{partner_id}/balance", dependencies=admin, response_model=PartnerBalances,
             response_model_exclude_none=True, openapi_extra=needs("payouts.balance.read"))
    def balance(partner_id: str, as_of: datetime | None = AS_OF,
                as_known_on: datetime | None = AS_KNOWN_ON,
                currency: str | None = TOTAL_IN) -> PartnerBalances:
        """The partner's balance per currency: ``accrued`` (earned, not on a statement yet;
        negative after a paid commission was reversed), ``pending`` (awaiting review),
        ``payable`` (on an issued statement), ``paid``. ``as_of`` / ``as_known_on``: the
        balance from the facts that happened by then / the records known by then.

        A partner payouts has no entries for (unknown, or nothing earned yet: payouts
        cannot tell these apart) has ``"balances": {}``. ``currency``: also ``total``, each
        bucket in that currency at the rates in force on the day of ``as_of`` (default
        today), each currency's amount rounded once; a rate missing is ``409 missing_rate``
        naming the pair and day.
        """
        moment = instant(as_of, "as_of")
        found = store.reads.balances(text(partner_id, "partner_id"), moment,
                                     instant(as_known_on, "as_known_on"))
        balances = formatted_balances(found)
        return PartnerBalances(
            partner_id=partner_id,
            balances={code: BalanceOut(**buckets) for code, buckets in balances.items()},
            total=balance_total(fx, found, currency.upper(), (moment or utc_now()).date())
            if currency is not None else None,
        )

    @app.get("/v1/partners/{partner_id}/commissions", dependencies=admin, response_model=None,
             openapi_extra=needs("statements.read"))
    def commissions(
        partner_id: str,
        limit: int = Query(100, ge=1, le=500, description="page size"),
        after: str | None = Query(None, description="the `next` cursor of the previous page"),
        format: Literal["json", "csv"] = Query("json", description="csv: every commission, one file"),
    ) -> Any:
        """The partner's commissions, oldest conversion first (then by conversion_id).
        ``status``: pending, accrued, payable (on a statement), paid, or void (rejected or
        reversed); ``amount`` is what it earns now (an adjusted payout). What changed after
        a statement claimed it is paid or clawed back on the next statement."""
        found = after_param(after)
        key = PageKey(*found) if found is not None else None
        claims = store.reads.claims(text(partner_id, "partner_id"))
        if format == "csv":
            return commissions_csv(store, partner_id, claims)
        page = store.reads.commissions(partner_id, limit, key)
        return CommissionsPage(
            partner_id=partner_id,
            commissions=[
                CommissionOut(
                    conversion_id=entry.conversion_id,
                    offer_id=entry.offer_id,
                    amount=format_money(entry.amount, entry.currency),
                    currency=entry.currency,
                    status=commission_status(entry, claims),
                    converted_at=entry.converted_at.isoformat().replace("+00:00", "Z"),
                )
                for entry in page.entries
            ],
            next=encode_cursor(page.next.converted_at, page.next.conversion_id) if page.next else None,
        )

    return app


def commissions_csv(store: Payouts, partner_id: str, claims: dict[str, tuple[Decimal, Decimal]]) -> Any:
    rows: list[list[str]] = []
    page = store.reads.commissions(partner_id, CSV_PAGE)
    while True:
        rows += [[e.conversion_id, e.offer_id, e.currency, format_money(e.amount, e.currency),
                  commission_status(e, claims), e.converted_at.isoformat().replace("+00:00", "Z")]
                 for e in page.entries]
        if page.next is None:
            break
        page = store.reads.commissions(partner_id, CSV_PAGE, page.next)
    return csv_response(["conversion_id", "offer_id", "currency", "amount", "status", "converted_at"], rows,
                        f"commissions-{partner_id}.csv")
