"""The console's operations API: every service's health, consumer lag, dead letters, and
redriving one (what ``afflux status``, ``afflux lag`` and ``afflux dlq`` tell an operator
at a terminal, for the console's operations page and for anyone with the scopes).

Every role reads it (``ops.read``); only an owner sends a dead letter back to its
topic (``dlq.redrive``): a redrive re-publishes the original bytes (the same event_id),
so a consumer that already applied it drops it, one that never did applies it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from afflux_console.adapters.operations import Operations
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import ApiError, admin_auth

Readiness = Callable[[str], Awaitable[tuple[str, str]]]


class ServiceState(BaseModel):
    name: str
    state: str = Field(description="ready, not-ready (up, its /readyz says no) or down (no answer)")
    detail: str


class LagRow(BaseModel):
    consumer: str
    topic: str
    partition: int
    applied: int | None
    end: int
    lag: int


class LetterOut(BaseModel):
    topic: str
    partition: int
    offset: int
    source: str
    reason: str
    event_type: str | None
    event_id: str | None


class OperationsOut(BaseModel):
    services: list[ServiceState]
    lag: list[LagRow]
    dead_letters: list[LetterOut]
    problems: list[str] = Field(description="what could not be read (the broker, the database), if anything")


class RedriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(max_length=200, pattern=r"^afflux\.[a-z]+\.v[0-9]+$")
    partition: int = Field(ge=0, le=10_000)
    offset: int = Field(ge=0)


class RedriveOut(BaseModel):
    topic: str
    partition: int
    offset: int


def operations_routes(
    operations: Operations, services: list[str], ready: Readiness, credentials: Credentials
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["operations"], dependencies=[admin_auth(credentials)])

    @router.get("/operations", response_model=OperationsOut, openapi_extra=needs("ops.read"))
    async def overview() -> Any:
        """Each service's health, every consumer's lag per partition, the dead letters."""
        states = await asyncio.gather(*(ready(name) for name in services))
        problems: list[str] = []
        lag_rows: list[LagRow] = []
        letters: list[LetterOut] = []
        try:
            lag_rows = [
                LagRow(
                    consumer=r.consumer,
                    topic=r.topic,
                    partition=r.partition,
                    applied=r.applied,
                    end=r.end,
                    lag=r.lag,
                )
                for r in await operations.lag()
            ]
        except Exception as error:  # the broker or database away: say so, show the rest
            problems.append(f"consumer lag: {type(error).__name__}: {str(error)[:200]}")
        try:
            letters = [LetterOut(**vars(letter)) for letter in await operations.dead_letters()]
        except Exception as error:
            problems.append(f"dead letters: {type(error).__name__}: {str(error)[:200]}")
        return OperationsOut(
            services=[
                ServiceState(name=name, state=state, detail=detail)
                for name, (state, detail) in zip(services, states, strict=True)
            ],
            lag=lag_rows,
            dead_letters=letters,
            problems=problems,
        )

    @router.post(
        "/dead-letters/redrive",
        response_model=RedriveOut,
        openapi_extra=needs("dlq.redrive"),
        responses={404: {"description": "no dead letter at that position"}},
    )
    async def redrive(body: RedriveIn) -> Any:
        """Send one dead letter back to its source topic."""
        try:
            topic, partition, offset = await operations.redrive(body.topic, body.partition, body.offset)
        except LookupError as error:
            raise ApiError(404, "dead_letter_not_found", str(error), "offset") from error
        return RedriveOut(topic=topic, partition=partition, offset=offset)

    return router
