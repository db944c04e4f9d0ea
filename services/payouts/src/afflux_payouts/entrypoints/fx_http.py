"""The exchange rate routes: finance records rates by hand or uploads the ECB's reference
rates file; anyone who reads statements lists them; a balance totals in one currency.

A rate is answered ``201`` once it is in force (folded back from the log, so a close
right after converts with it), or ``202`` with ``X-Afflux-Log: pending`` when the fold
has not caught up in time (it is recorded and will be).
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from afflux_payouts.adapters.ecb_rates import UnreadableRates, read_ecb_rates
from afflux_payouts.application.fx_rates import FxRates, InvalidRate, Recorded, Total
from afflux_payouts.domain.balance import format_money
from afflux_payouts.domain.fx import MissingRate, Rate
from afflux_plumbing.auth import needs
from afflux_plumbing.http import ApiError

CURRENCY = Field(pattern=r"^[A-Za-z]{3}$")
MAX_FILE = 16 * 1024 * 1024
"""The largest rates file taken (the ECB's full history as CSV is about 6 MB)."""


class RateIn(BaseModel):
    """One ``base`` is worth ``rate`` of ``quote`` on ``date``."""

    model_config = ConfigDict(extra="forbid")

    base: str = CURRENCY
    quote: str = CURRENCY
    rate: Decimal = Field(gt=0)
    date: date


def recorded_json(recorded: Recorded) -> JSONResponse:
    body = {"recorded": len(recorded.recorded), "unchanged": recorded.unchanged,
            "rates": [rate_json(rate) for rate in recorded.recorded[:1000]]}
    if recorded.in_force:
        return JSONResponse(body, status_code=201)
    return JSONResponse(body, status_code=202, headers={"X-Afflux-Log": "pending"})


def rate_json(rate: Rate) -> dict[str, Any]:
    return {"base": rate.base, "quote": rate.quote, "rate": format(rate.rate, "f"),
            "date": rate.day.isoformat()}


def total_json(total: Total) -> dict[str, Any]:
    """A balance bucket's amounts totalled in one currency, with the rates used."""
    return {"currency": total.currency, "amount": format_money(total.total, total.currency),
            "rate_day": total.day.isoformat(),
            "rates": {code: {"pair": rate.pair, "rate": format(rate.rate, "f"), "date": rate.day.isoformat()}
                      for code, rate in total.rates.items()}}


def missing_rate(error: MissingRate, field: str) -> ApiError:
    return ApiError(409, "missing_rate", f"{error.reason}: no {error.base}/{error.quote} rate is in force on "
                                         f"{error.day.isoformat()}", field=field)


def add_fx_routes(app: FastAPI, rates: FxRates, admin: list[Any]) -> None:
    async def record(found: list[Rate], source: str) -> JSONResponse:
        try:
            return recorded_json(await asyncio.to_thread(rates.record, found, source))
        except InvalidRate as error:
            raise ApiError(422, "invalid_rate", str(error), field=error.field) from error

    @app.post("/v1/fx-rates", dependencies=admin, status_code=201, response_model=None,
              openapi_extra=needs("fx_rates.write"))
    async def set_rate(body: RateIn) -> JSONResponse:
        """Record that one ``base`` is worth ``rate`` of ``quote`` on ``date`` (a rate set
        again for a day is in force for what is converted from then on)."""
        return await record([Rate(body.base.upper(), body.quote.upper(), body.date, body.rate)], "finance")

    @app.post("/v1/fx-rates/ecb", dependencies=admin, status_code=201, response_model=None,
              openapi_extra=needs("fx_rates.write"))
    async def import_ecb(request: Request) -> JSONResponse:
        """Record every rate of an ECB euro reference rates file sent as the body: the daily
        or historical CSV (``eurofxref.csv``, ``eurofxref-hist.csv``) or XML
        (``eurofxref-daily.xml``...); each EUR/<currency> on its day. Rates already in force
        at the same value are left as they are."""
        content = await request.body()
        if len(content) > MAX_FILE:
            raise ApiError(413, "file_too_large", f"a rates file is at most {MAX_FILE:,} bytes", field="file")
        try:
            found = read_ecb_rates(content)
        except (UnreadableRates, UnicodeDecodeError) as error:
            raise ApiError(422, "invalid_rates_file", f"not an ECB reference rates file: {error}",
                           field="file") from error
        return await record(found, "ecb")

    @app.get("/v1/fx-rates", dependencies=admin, openapi_extra=needs("statements.read"))
    def list_rates(base: str | None = Query(None, pattern=r"^[A-Za-z]{3}$"),
                   quote: str | None = Query(None, pattern=r"^[A-Za-z]{3}$"),
                   limit: int = Query(500, ge=1, le=5000)) -> dict[str, Any]:
        """The rates in force (the last recorded of each pair and day), the latest day first
        (then by pair), at most ``limit``."""
        book = rates.store.desk.rates()
        items = [Rate(pair[0], pair[1], day, value) for pair, days in book.rates.items()
                 for day, value in days.items()
                 if (base is None or pair[0] == base.upper()) and (quote is None or pair[1] == quote.upper())]
        items.sort(key=lambda rate: (-rate.day.toordinal(), rate.pair))
        return {"items": [rate_json(rate) for rate in items[:limit]]}
