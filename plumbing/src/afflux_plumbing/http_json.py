"""Request bodies read as exact JSON: numbers with a fraction become ``Decimal``.

Money is never a float (ARCHITECTURE.md), yet a caller may well send
``{"amount": 123456789012.12345678}``. Starlette's ``Request.json`` reads that as a
float and pydantic then makes ``Decimal("123456789012.12346")`` of it: a silent loss.
Parsing with ``parse_float=Decimal`` keeps every digit for a ``Decimal`` field while
``int`` and ``float`` fields still accept the value.

The same parse refuses what would otherwise turn into a 500 or a 400 outside the
shared error shape: ``NaN``/``Infinity`` (not JSON), integers past Python's digit
limit, and nesting deeper than ``MAX_JSON_DEPTH`` (a deep document exhausts the
recursion of the parser or of the validators after it). Each becomes a
``JSONDecodeError``, which FastAPI answers as a 422 ``invalid_request``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

MAX_JSON_DEPTH = 32
"""Arrays and objects nested in one another; contract bodies need fewer than ten."""


def loads_exact(body: bytes) -> Any:
    """Parse a JSON document, fractions as ``Decimal``; refuse what JSON or the bound
    does not allow with a ``JSONDecodeError`` that says why."""
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise _invalid(f"nesting deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # an integer past sys.get_int_max_str_digits()
        raise _invalid(str(error)) from None
    if _deeper_than(document, MAX_JSON_DEPTH):
        raise _invalid(f"nesting deeper than {MAX_JSON_DEPTH} levels")
    return document


def _invalid(reason: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(reason, "", 0)


def _refuse_constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number")


def _deeper_than(document: Any, limit: int) -> bool:
    """Walk without recursion, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class ExactJsonRequest(Request):
    """A request whose ``json()`` is ``loads_exact``."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ExactJsonRoute(APIRoute):
    """An ``APIRoute`` that hands its endpoint an ``ExactJsonRequest``; it adds no state,
    so any plain ``APIRoute`` can become one (see ``adopt_routes``)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact_json_handler


def adopt_routes(router: APIRouter) -> None:
    """Make the router's plain routes ``ExactJsonRoute``s before an app includes them.

    Services build their routers with FastAPI's own ``APIRouter``; the app, not each
    service, decides how bodies are read. A route of some other custom class is
    refused rather than silently left reading floats."""
    for route in router.routes:
        if type(route) is APIRoute:
            route.__class__ = ExactJsonRoute
        elif isinstance(route, APIRoute) and not isinstance(route, ExactJsonRoute):
            raise TypeError(f"{route.path}: route class {type(route).__name__} must derive ExactJsonRoute")
