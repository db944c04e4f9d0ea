"""The payouts admin API: balances and commissions of a partner.

Payouts does not own partners: it only knows the partners that earned
something. So an unknown partner_id is answered like a partner with nothing
earned yet (200, empty), never 404: telling the two apart is the partners
service's job.
"""

from __future__ import annotations

from fastapi import FastAPI, Query
from pydantic import BaseModel

from afflux_payouts.application.payouts import Payouts
from afflux_payouts.domain.balance import format_money, formatted_balances
from afflux_payouts.entrypoints.cursor import InvalidCursor, decode_cursor, encode_cursor
from afflux_plumbing.http import ApiError, ReadinessCheck, admin_auth, service_app


class BalanceOut(BaseModel):
    """Money in one currency by bucket, as decimal strings in the currency's minor units."""

    accrued: str
    pending: str
    payable: str
    paid: str


class PartnerBalances(BaseModel):
    partner_id: str
    balances: dict[str, BalanceOut]


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


def create_app(store: Payouts, readiness: ReadinessCheck, admin_token: str) -> FastAPI:
    app = service_app("Afflux payouts", readiness)
    admin = [admin_auth(admin_token)]

    @app.get("/v1/partners/{partner_id}/balance", dependencies=admin, response_model=PartnerBalances)
    def balance(partner_id: str) -> PartnerBalances:
        """The partner's balance per currency: ``accrued`` (earned, not on a statement yet),
        ``pending`` (awaiting review), ``payable`` (on an issued statement), ``paid``.

        A partner payouts has no entries for (unknown, or nothing earned yet: payouts
        cannot tell these apart) has ``"balances": {}``.
        """
        balances = formatted_balances(store.balances(partner_id))
        return PartnerBalances(
            partner_id=partner_id,
            balances={currency: BalanceOut(**buckets) for currency, buckets in balances.items()},
        )

    @app.get("/v1/partners/{partner_id}/commissions", dependencies=admin, response_model=CommissionsPage)
    def commissions(
        partner_id: str,
        limit: int = Query(100, ge=1, le=500, description="page size"),
        after: str | None = Query(None, description="the `next` cursor of the previous page"),
    ) -> CommissionsPage:
        """The partner's commissions, oldest conversion first (then by conversion_id).
        ``status`` is the commission's bucket (pending, accrued, payable, paid, or void:
        rejected or reversed before it was settled); ``amount`` is what it holds now (an
        adjusted payout). Corrections of settled commissions count in the balance and are
        not listed here yet."""
        try:
            key = decode_cursor(after) if after is not None else None
        except InvalidCursor as error:
            raise ApiError(422, "invalid_request", str(error), field="after") from error
        page = store.commissions(partner_id, limit, key)
        return CommissionsPage(
            partner_id=partner_id,
            commissions=[
                CommissionOut(
                    conversion_id=entry.conversion_id,
                    offer_id=entry.offer_id,
                    amount=format_money(entry.amount, entry.currency),
                    currency=entry.currency,
                    status=entry.bucket.value,
                    converted_at=entry.converted_at.isoformat().replace("+00:00", "Z"),
                )
                for entry in page.entries
            ],
            next=encode_cursor(page.next) if page.next is not None else None,
        )

    return app
