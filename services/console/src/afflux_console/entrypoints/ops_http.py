"""The console's operations API: every service's health, consumer lag, dead letters, the
keys they block, redriving a letter or a key's letters in order, and discarding a held
letter (what ``afflux status``, ``afflux lag`` and ``afflux dlq`` tell and do for an
operator at a terminal, for the console's operations page and for anyone with the scopes).

Every role reads it (``ops.read``); only an owner sends dead letters back to their
topic or discards one (``dlq.redrive``): a redrive re-publishes the original bytes (the
same event_id), so a consumer that already applied it drops it, one that never did
applies it once; a discard lets a key's later records overtake a record for good.

The overview reads the broker and the database: each part has ``READ_BUDGET`` seconds,
all at once, so a slow or unreachable one makes the page say so instead of hanging it
(the thread of a database query past its budget finishes on its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from afflux_console.adapters.operations import BlockedKey, Operations
from afflux_infra.blocked import HeldLetter
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import ApiError, admin_auth

Readiness = Callable[[str], Awaitable[tuple[str, str]]]
T = TypeVar("T")
READ_BUDGET = 5.0
"""Seconds each part of the overview may take (lag, dead letters, blocked keys): the
readiness probes have 3 s, and a page that waits longer than this is one an operator
reloads during an incident, when the database or broker is slow."""
HEX = r"^([0-9a-f]{2}){1,1024}$"
TOPIC = r"^afflux\.[a-z]+\.v[0-9]+$"


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


class HeldLetterOut(BaseModel):
    store: str = Field(description="schema.store: the consumer's store that holds it")
    group: str
    topic: str
    key: str = Field(description="the key's bytes, hex")
    key_text: str
    digest: str = Field(description="SHA-256 of the record's bytes, hex: what identifies it")
    source: str = Field(description="where the record was first read: topic#partition@offset")
    dead_letter: str = Field(description="its latest letter: topic.dlq#partition@offset")
    reason: str
    letters: int = Field(description="how often it was sent to the DLQ (more than once: a redrive failed)")
    held_at: datetime


class BlockedKeyOut(BaseModel):
    store: str
    group: str
    topic: str
    key: str = Field(description="hex")
    key_text: str
    held: int = Field(description="letters held for the key, the first included")
    first: HeldLetterOut = Field(description="the letter the others wait for")


class OperationsOut(BaseModel):
    services: list[ServiceState]
    lag: list[LagRow]
    dead_letters: list[LetterOut]
    blocked: list[BlockedKeyOut] = Field(description="keys whose records wait on a dead letter, per store")
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


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(max_length=200, pattern=TOPIC)
    key: str = Field(pattern=HEX, description="the key's bytes, hex")


class RedrivenLetter(RedriveOut):
    dead_letter: str = Field(description="the letter sent back: topic.dlq#partition@offset")


class KeyRedrivenOut(BaseModel):
    redriven: list[RedrivenLetter] = Field(description="in the key's order, each acked before the next")


class DiscardIn(KeyIn):
    store: str = Field(max_length=200, pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the record's bytes, hex")


class DiscardedOut(BaseModel):
    waits_for: str | None = Field(description="the key's next held record in that store; null: free")


def operations_routes(
    operations: Operations, services: list[str], ready: Readiness, credentials: Credentials
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["operations"], dependencies=[admin_auth(credentials)])

    @router.get("/operations", response_model=OperationsOut, openapi_extra=needs("ops.read"))
    async def overview() -> Any:
        """Each service's health, every consumer's lag per partition, the dead letters, the
        blocked keys; each part within ``READ_BUDGET`` seconds, all read at once."""
        problems: list[str] = []
        states, lag_rows, letters, keys = await asyncio.gather(
            asyncio.gather(*(ready(name) for name in services)),
            _within("consumer lag", operations.lag(), problems),
            _within("dead letters", operations.dead_letters(), problems),
            _within("blocked keys", operations.blocked_keys(), problems),
        )
        return OperationsOut(
            services=[
                ServiceState(name=name, state=state, detail=detail)
                for name, (state, detail) in zip(services, states, strict=True)
            ],
            lag=[
                LagRow(
                    consumer=r.consumer,
                    topic=r.topic,
                    partition=r.partition,
                    applied=r.applied,
                    end=r.end,
                    lag=r.lag,
                )
                for r in lag_rows or []
            ],
            dead_letters=[LetterOut(**vars(letter)) for letter in letters or []],
            blocked=[_blocked_out(key) for key in keys or []],
            problems=problems,
        )

    @router.get(
        "/dead-letters/held",
        response_model=HeldLetterOut,
        openapi_extra=needs("ops.read"),
        responses={404: {"description": "the store holds no such letter (applied or discarded)"}},
    )
    async def held(
        store: str = Query(max_length=200),
        topic: str = Query(max_length=200, pattern=TOPIC),
        key: str = Query(pattern=HEX),
        digest: str = Query(pattern=r"^[0-9a-f]{64}$"),
    ) -> Any:
        """One held letter, as a discard is asked to confirm it."""
        try:
            letter = await operations.held_letter(store, topic, bytes.fromhex(key), bytes.fromhex(digest))
        except LookupError as error:
            raise ApiError(404, "held_letter_not_found", str(error), "digest") from error
        return _held_out(letter)

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

    @router.post(
        "/dead-letters/redrive-key",
        response_model=KeyRedrivenOut,
        openapi_extra=needs("dlq.redrive"),
        responses={404: {"description": "no letter held for the key, or one is no longer on the DLQ"}},
    )
    async def redrive_key(body: KeyIn) -> Any:
        """Send every letter the stores hold for a key back to its topic, in the key's order
        (as ``afflux dlq redrive --key``); nothing is sent when one is missing."""
        try:
            landed = await operations.redrive_key(body.topic, bytes.fromhex(body.key))
        except LookupError as error:
            raise ApiError(404, "held_letter_not_found", str(error), "key") from error
        return KeyRedrivenOut(
            redriven=[
                RedrivenLetter(dead_letter=letter, topic=topic, partition=partition, offset=offset)
                for letter, topic, partition, offset in landed
            ]
        )

    @router.post(
        "/dead-letters/discard",
        response_model=DiscardedOut,
        openapi_extra=needs("dlq.redrive"),
        responses={404: {"description": "the store holds no such letter (applied or discarded)"}},
    )
    async def discard(body: DiscardIn) -> Any:
        """Stop holding a letter in one store: its record is never applied there, and its
        key no longer waits for it (the letters behind it wait for a redrive of the key)."""
        try:
            waits_for = await operations.discard(
                body.store, body.topic, bytes.fromhex(body.key), bytes.fromhex(body.digest)
            )
        except LookupError as error:
            raise ApiError(404, "held_letter_not_found", str(error), "digest") from error
        return DiscardedOut(waits_for=waits_for)

    return router


async def _within(part: str, reading: Awaitable[T], problems: list[str]) -> T | None:
    """What ``reading`` returns within ``READ_BUDGET`` seconds; else None, and ``problems``
    says which part and why (the broker or database slow or away: the rest is shown)."""
    try:
        return await asyncio.wait_for(reading, READ_BUDGET)
    except TimeoutError:
        problems.append(f"{part}: no answer within {READ_BUDGET:g} s")
    except Exception as error:
        problems.append(f"{part}: {type(error).__name__}: {str(error)[:200]}")
    return None


def _held_out(letter: HeldLetter) -> HeldLetterOut:
    return HeldLetterOut(
        store=letter.store,
        group=letter.group,
        topic=letter.topic,
        key=letter.key.hex(),
        key_text=letter.key_text,
        digest=letter.digest.hex(),
        source=letter.source,
        dead_letter=letter.dead_letter,
        reason=letter.reason,
        letters=letter.letters,
        held_at=letter.held_at,
    )


def _blocked_out(key: BlockedKey) -> BlockedKeyOut:
    return BlockedKeyOut(
        store=key.store,
        group=key.group,
        topic=key.topic,
        key=key.key.hex(),
        key_text=key.first.key_text,
        held=key.held,
        first=_held_out(key.first),
    )
