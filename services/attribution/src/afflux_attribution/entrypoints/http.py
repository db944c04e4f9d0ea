"""Attribution's admin HTTP API: how a reported conversion was decided."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from afflux_attribution.application.attribution import Attribution
from afflux_contracts import ConversionStatus, Money, RejectionReason
from afflux_contracts.values import DecimalString, UtcDatetime
from afflux_plumbing.http import NotFound, ReadinessCheck, admin_auth, service_app


class ConversionView(BaseModel):
    """A decided conversion. Money is in the offer's currency; ``sale_amount`` is in
    ``currency`` (the reported one, else the offer's). Fields that do not apply (a
    rejected conversion's payout, an unknown click's partner) are left out."""

    conversion_id: str
    status: ConversionStatus
    reason: RejectionReason | None = None
    message: str | None = None
    event: str
    partner_id: str | None = None
    offer_id: str | None = None
    transaction_id: str | None = None
    order_id: str | None = None
    payout: Money | None = None
    revenue: Money | None = None
    sale_amount: DecimalString | None = None
    currency: str | None = None
    clicked_at: UtcDatetime | None = None
    converted_at: UtcDatetime
    decided_at: UtcDatetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> ConversionView:
        currency = row["currency"]
        return cls(
            **{key: value for key, value in row.items() if key not in ("payout", "revenue")},
            payout=Money(amount=row["payout"], currency=currency) if row["payout"] is not None else None,
            revenue=Money(amount=row["revenue"], currency=currency) if row["revenue"] is not None else None,
        )


def create_app(store: Attribution, readiness: ReadinessCheck, admin_token: str) -> FastAPI:
    app = service_app("Afflux attribution", readiness)

    @app.get("/v1/conversions/{conversion_id}", tags=["conversions"], dependencies=[admin_auth(admin_token)],
             response_model=ConversionView, response_model_exclude_none=True,
             responses={404: {"description": "no decision on this conversion_id"}})
    async def get_conversion(conversion_id: str) -> ConversionView:
        """How attribution decided a conversion: ``approved`` (attributed and priced) or
        ``rejected`` with its reason.

        A conversion the tracker accepted is decided asynchronously, once its report is
        read from the log; until then it is not known here and the answer is 404, like
        for a conversion_id never reported (this service cannot tell the two apart, so
        it does not answer ``pending``)."""
        row = await asyncio.to_thread(store.conversion, conversion_id)
        if row is None:
            raise NotFound("conversion_not_found", f"no decided conversion has id {conversion_id}")
        return ConversionView.of(row)

    return app
