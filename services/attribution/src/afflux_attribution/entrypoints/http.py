"""Attribution's admin HTTP API: how a reported conversion was decided, the listing of
decided conversions, the advertiser's review (status changes, adjustments, appeals),
and how an offer's paid traffic was judged.

A review is answered once its ConversionStatusChanged is on the log (``200``), or
with ``202`` when the log cannot be reached in time: the change is kept and the
outbox publishes it later (``X-Afflux-Log`` says which).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from afflux_attribution.adapters.views import conversion_row
from afflux_attribution.application.attribution import (
    Attribution,
    ConcurrentReview,
    ConversionFilter,
    PageKey,
    UnknownConversion,
)
from afflux_attribution.application.ports import Held
from afflux_attribution.domain.conversion import Conversion, InvalidPayout, TransitionRefused
from afflux_contracts import ConversionStatus, DecisionTerms, Money, RuleCheck, StatusChange
from afflux_contracts.values import DecimalString, UtcDatetime
from afflux_plumbing.acknowledge import published
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.cursor import after_param, encode_cursor
from afflux_plumbing.http import ApiError, NotFound, ReadinessCheck, admin_auth, service_app


class ConversionView(BaseModel):
    """A decided conversion. Money is in the offer's currency; ``sale_amount`` is in
    ``currency`` (the reported one, else the offer's). ``reason`` is attribution's
    rejection code, why a ``pending`` one is held (or waits, when not decided yet), or the
    reviewer's reason after a review (with its ``note`` and ``changed_at``). Fields that do
    not apply (a conversion rejected before pricing has no payout, an unknown click no
    partner) are left out."""

    conversion_id: str
    status: ConversionStatus
    reason: str | None = None
    message: str | None = None
    note: str | None = None
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
    decided_at: UtcDatetime | None = None
    changed_at: UtcDatetime | None = None
    coupon_code: str | None = None
    """Set when the coupon code credited the partner (a clickless conversion)."""
    terms: DecisionTerms | None = None
    """The terms the decision used: the partners-log event ids of the offer and
    relationship versions, the event priced, and where the payout came from."""
    trace: list[RuleCheck] = Field(default_factory=list)
    """Every rule checked, in order, with its outcome: "why this amount"."""
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ConversionView:
        currency = row["currency"]
        return cls(
            **{key: value for key, value in row.items() if key not in ("payout", "revenue", "trace")},
            trace=row.get("trace") or [],
            payout=Money(amount=row["payout"], currency=currency) if row["payout"] is not None else None,
            revenue=Money(amount=row["revenue"], currency=currency) if row["revenue"] is not None else None,
        )


    @classmethod
    def held(cls, held: Held) -> ConversionView:
        """A report read but not decided yet: ``pending``, with what it waits for."""
        return cls(conversion_id=held.conversion_id, status=ConversionStatus.PENDING, reason=held.reason,
                   message=held.message, event=held.event, transaction_id=held.transaction_id,
                   offer_id=held.offer_id, converted_at=held.converted_at)


class TrafficLine(BaseModel):
    partner_id: str
    kind: Literal["click", "impression"]
    outcome: str
    """``earned``, or the reason code the visits earned nothing for."""
    count: int


class TrafficView(BaseModel):
    """How an offer's traffic was judged for CPC/CPM pay (only offers paying per click or
    per thousand impressions judge it)."""

    offer_id: str
    traffic: list[TrafficLine]


class TrackingLog(Protocol):
    """What the app needs of the plumbing ``LogCatchUp`` on the tracking log."""

    async def caught_up(self, timeout: float) -> bool: ...


class ConversionsPage(BaseModel):
    conversions: list[ConversionView]
    next: str | None


NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL: refused at the edge (422), not a 5xx inside."""


class StatusIn(BaseModel):
    status: Literal["approved", "rejected", "reversed"]
    reason: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    note: str | None = Field(None, max_length=2000, pattern=NO_NUL)


class AdjustIn(BaseModel):
    payout: str = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,8})?$",
                        description="the new payout, a decimal string in the conversion's currency")
    reason: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    note: str | None = Field(None, max_length=2000, pattern=NO_NUL)


REVIEW_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "recorded; not on the log yet (published later)"},
    404: {"description": "no decided conversion with this id"},
    409: {"description": "the conversion's status does not allow this change"},
}


def create_app(store: Attribution, readiness: ReadinessCheck, admin_token: str | Credentials,
               tracking_log: TrackingLog,
               publish_timeout: float = 5.0, catch_up_timeout: float = 3.0) -> FastAPI:
    app = service_app("Afflux attribution", readiness)
    admin = [admin_auth(admin_token)]

    @app.get("/v1/conversions/{conversion_id}", tags=["conversions"], dependencies=admin,
             response_model=ConversionView, response_model_exclude_none=True,
             openapi_extra=needs("conversions.read"),
             responses={404: {"description": "this conversion_id was never reported"},
                        503: {"description": "the tracking log cannot be read to its end now: retry"}})
    async def get_conversion(conversion_id: str) -> ConversionView:
        """How attribution decided a conversion, and where the review left it: ``approved``
        (attributed and priced), ``pending`` (held for review, or reported and not decided
        yet), ``rejected`` with its reason, or ``reversed``.

        A conversion the tracker accepted is on the tracking log; one not known here is
        looked for by catching up with that log first, so 404 means never reported. When
        the log cannot be read to its end in time (a report parked ahead of it, the broker
        away), the answer is 503 with ``Retry-After``, never a final 404."""
        async def known() -> ConversionView | None:
            row = await asyncio.to_thread(store.conversion, conversion_id)
            if row is not None:
                return ConversionView.of(row)
            held = await asyncio.to_thread(store.held, conversion_id)
            return ConversionView.held(held) if held is not None else None

        view = await known()
        if view is not None:
            return view
        caught_up = await tracking_log.caught_up(catch_up_timeout)
        view = await known()
        if view is not None:
            return view
        if not caught_up:
            raise ApiError(503, "not_known_yet", f"conversion {conversion_id} is not known yet and the "
                           "tracking log could not be read to its end: retry", headers={"Retry-After": "1"})
        raise NotFound("conversion_not_found", f"no conversion with id {conversion_id} was reported")

    @app.get("/v1/conversions", tags=["conversions"], dependencies=admin, response_model=ConversionsPage,
             response_model_exclude_none=True, openapi_extra=needs("conversions.read"))
    async def list_conversions(
        partner_id: str | None = Query(None),
        offer_id: str | None = Query(None),
        status: ConversionStatus | None = Query(None),  # noqa: B008
        since: AwareDatetime | None = Query(None, alias="from", description="converted at or after"),  # noqa: B008
        until: AwareDatetime | None = Query(None, alias="to", description="converted before"),  # noqa: B008
        limit: int = Query(100, ge=1, le=500, description="page size"),
        after: str | None = Query(None, description="the `next` cursor of the previous page"),
    ) -> ConversionsPage:
        """Decided conversions, oldest conversion first (then by conversion_id); ``next``
        is the cursor of the following page, absent on the last one."""
        found = after_param(after)
        key = PageKey(*found) if found is not None else None
        where = ConversionFilter(partner_id, offer_id, status.value if status else None, since, until)
        page = await asyncio.to_thread(store.conversions, where, limit, key)
        following = page.next
        return ConversionsPage(
            conversions=[ConversionView.of(row) for row in page.rows],
            next=encode_cursor(following.converted_at, following.conversion_id) if following else None)

    def reviewed(conversion: Conversion) -> Response:
        on_log = published(store, publish_timeout)
        body = ConversionView.of(conversion_row(conversion)).model_dump(mode="json", exclude_none=True)
        return JSONResponse(body, status_code=200 if on_log else 202,
                            headers={"X-Afflux-Log": "published" if on_log else "pending"})

    def change_status(conversion_id: str, body: StatusIn, caller: Any) -> Response:
        by = getattr(caller, "name", None) or "admin"  # the credential's name (the admin token: admin)
        return reviewed(store.change_status(conversion_id, StatusChange(body.status), body.reason, body.note,
                                            by))

    @app.post("/v1/conversions/{conversion_id}/status", tags=["review"],
              response_model=ConversionView, responses=REVIEW_RESPONSES,
              openapi_extra=needs("conversions.review"))
    def post_status(conversion_id: str, body: StatusIn, caller: Any = admin[0]) -> Response:
        """Approve (also on appeal: a conversion a rule rejected is then credited, priced with
        the terms in force at its conversion time, its trace naming who approved it and
        why), reject, or reverse (refund, chargeback: clawed back by payouts, also after
        payment) a decided conversion."""
        return change_status(conversion_id, body, caller)

    @app.post("/v1/offers/{offer_id}/orders/{order_id}/status", tags=["review"],
              response_model=ConversionView, responses=REVIEW_RESPONSES,
              openapi_extra=needs("conversions.review"))
    def post_order_status(offer_id: str, order_id: str, body: StatusIn, caller: Any = admin[0]) -> Response:
        """The same, for the conversion that credited ``order_id`` on the offer."""
        return change_status(store.conversion_of_order(offer_id, order_id), body, caller)

    @app.get("/v1/offers/{offer_id}/traffic", tags=["traffic"], dependencies=admin,
             response_model=TrafficView, openapi_extra=needs("conversions.read"))
    async def get_traffic(offer_id: str) -> TrafficView:
        """How the offer's clicks (CPC) or impressions (CPM) were judged: per partner, how
        many earned and how many earned nothing, for which reason (``not_unique``,
        ``fraud_click_ip_limit``, ``over_cap``...)."""
        rows = await asyncio.to_thread(store.views.traffic, offer_id)
        return TrafficView(offer_id=offer_id, traffic=[TrafficLine(partner_id=r["partner_id"], kind=r["kind"],
                                                                   outcome=r["outcome"], count=int(r["n"]))
                                                       for r in rows])

    @app.post("/v1/conversions/{conversion_id}/adjust", tags=["review"], dependencies=admin,
              response_model=ConversionView, responses=REVIEW_RESPONSES,
              openapi_extra=needs("conversions.review"))
    def post_adjust(conversion_id: str, body: AdjustIn) -> Response:
        """Give an approved conversion a new payout (exact, in its currency: never rounded)."""
        try:
            conversion = store.adjust(conversion_id, Decimal(body.payout), body.reason, body.note)
        except InvalidPayout as error:
            raise ApiError(422, "invalid_payout", str(error), field="payout") from error
        return reviewed(conversion)

    @app.exception_handler(UnknownConversion)
    async def unknown(_: Any, error: UnknownConversion) -> Response:
        return JSONResponse({"error": {"code": "conversion_not_found", "message": str(error), "field": None}},
                            status_code=404)

    @app.exception_handler(TransitionRefused)
    async def refused(_: Any, error: TransitionRefused) -> Response:
        return JSONResponse({"error": {"code": "transition_refused", "message": error.message,
                                       "field": "status", "current_status": error.status.value}},
                            status_code=409)

    @app.exception_handler(ConcurrentReview)
    async def concurrent(_: Any, error: ConcurrentReview) -> Response:
        return JSONResponse({"error": {"code": "concurrent_update", "message": str(error), "field": None}},
                            status_code=409)

    return app
