"""The sub1..sub5 a partner asks a link to carry: one query dependency for every route that
hands out a link (an offer's tracking link, its creatives' code, the smart links), so each
takes the same parameters, bounded the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from afflux_gateway.domain.access import MAX_SUB_LENGTH, SUB_NAMES


def link_subs(
    sub1: str | None = Query(None, max_length=MAX_SUB_LENGTH),
    sub2: str | None = Query(None, max_length=MAX_SUB_LENGTH),
    sub3: str | None = Query(None, max_length=MAX_SUB_LENGTH),
    sub4: str | None = Query(None, max_length=MAX_SUB_LENGTH),
    sub5: str | None = Query(None, max_length=MAX_SUB_LENGTH),
) -> dict[str, str]:
    """The subs given, by name; empty ones left out."""
    given = zip(SUB_NAMES, (sub1, sub2, sub3, sub4, sub5), strict=True)
    return {name: value for name, value in given if value}


LinkSubs = Annotated[dict[str, str], Depends(link_subs)]
