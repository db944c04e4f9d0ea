"""Schemathesis over the OpenAPI of partners, attribution and payouts: whatever a
caller sends, valid or not, the answer is never a 5xx and every 4xx is the contract's
error shape.

Short by default (``make test``); set ``AFFLUX_FUZZ_EXAMPLES`` (say 500) for a long run
of that many examples per operation and generation mode.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from security_fixtures import ADMIN, ServiceApp

pytestmark = pytest.mark.fuzz

FUZZED = ("partners", "attribution", "payouts")
EXAMPLES = int(os.environ.get("AFFLUX_FUZZ_EXAMPLES", "6"))


def contract_violation(status: int, body: Any) -> str | None:
    """What is wrong with an answer, by the public HTTP contract; None if nothing."""
    if status >= 500:
        return f"server error {status}: {body!r}"
    if 400 <= status < 500:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or set(error) != {"code", "message", "field"}:
            return f"{status} outside the error shape: {body!r}"
        if not isinstance(error["code"], str) or not isinstance(error["message"], str):
            return f"{status} with a malformed error: {body!r}"
    return None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def fuzz_operation(operation: Any) -> str | None:
    """Run one operation's examples; the shrunk failing example, if any, as a curl line."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE, headers=ADMIN),
                         operation.as_strategy(GenerationMode.NEGATIVE, headers=ADMIN))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 50,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(headers=ADMIN)
        problem = contract_violation(response.status_code, _json(response))
        assert problem is None, f"{case.as_curl_command(headers=ADMIN)}\n  -> {problem}"

    try:
        check()
    except AssertionError as failure:
        return f"{operation.label}: {failure}"
    return None


def fuzz_service(service: ServiceApp) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.app)
    failures = []
    for result in schema.get_all_operations():
        failure = fuzz_operation(result.ok())
        if failure is not None:
            failures.append(failure)
    return failures


@pytest.mark.parametrize("name", FUZZED)
async def test_no_request_gets_a_5xx_and_every_4xx_has_the_error_shape(
    service_apps: dict[str, ServiceApp], name: str
) -> None:
    # In a worker thread: the served partners app's relay runs on this loop meanwhile.
    failures = await asyncio.to_thread(fuzz_service, service_apps[name])
    assert not failures, "\n".join(failures)
