"""Schemathesis over the OpenAPI of partners, attribution, payouts, postbacks and the
gateway: whatever a caller sends, valid or not, the answer is never a 5xx and every 4xx
is the contract's error shape. Admin routes are called with the admin token, the
gateway's partner routes (``/v1/me``) with a valid partner key, so that every request
gets past authentication into the routes' own parsing (a partner-only 500 stays unseen
behind a 401 otherwise).

Short by default (``make test``); for a long run set ``AFFLUX_FUZZ_EXAMPLES`` (say 500
examples per operation and generation mode) and lift the per-test timeout:
``AFFLUX_FUZZ_EXAMPLES=500 make test PYTEST_ARGS='-m fuzz -o timeout=0'``.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from security_fixtures import ADMIN, PARTNER_PREFIX, ServiceApp, contract_violation

pytestmark = pytest.mark.fuzz

FUZZED = ("partners", "attribution", "payouts", "postbacks", "gateway")
SERVED = set(FUZZED)
"""Every fuzzed app is served by the test's loop, schemathesis calling it without its
lifespan (``ServiceApp.asgi``)."""
EXAMPLES = int(os.environ.get("AFFLUX_FUZZ_EXAMPLES", "6"))


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def cases(operation: Any, known_ids: dict[str, str], headers: dict[str, str]) -> st.SearchStrategy[Any]:
    """Valid and invalid requests; half of them on ids that exist, so that they get past
    the 404 into the domain's rules."""
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode, headers=headers) for mode in modes]
    wanted = set(re.findall(r"\{([^}]+)\}", operation.path))
    if wanted and wanted <= set(known_ids):
        existing = {name: known_ids[name] for name in wanted}
        strategies += [operation.as_strategy(mode, headers=headers, path_parameters=existing)
                       for mode in modes]
    return st.one_of(strategies)


def fuzz_operation(operation: Any, known_ids: dict[str, str], headers: dict[str, str]) -> str | None:
    """Run one operation's examples; the shrunk failing example, if any, as a curl line."""
    strategy = cases(operation, known_ids, headers)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 50,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        problem = contract_violation(response.status_code, _json(response))
        assert problem is None, f"{case.as_curl_command(headers=headers)}\n  -> {problem}"

    try:
        check()
    except AssertionError as failure:
        return f"{operation.label}: {failure}"
    return None


def fuzz_service(service: ServiceApp, known_ids: dict[str, str], partner_key: str | None = None) -> list[str]:
    """Every operation: admin routes with the admin token, ``/v1/me`` ones with ``partner_key``."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.asgi())
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        partner_route = operation.path.startswith(PARTNER_PREFIX)
        if partner_route and partner_key is None:
            continue
        headers = {"X-Api-Key": partner_key} if partner_route and partner_key else ADMIN
        failure = fuzz_operation(operation, known_ids, headers)
        if failure is not None:
            failures.append(failure)
    return failures


async def existing_ids(partners: ServiceApp) -> dict[str, str]:
    """A partner and an offer to aim requests at."""
    async with partners.client(headers=ADMIN) as client:
        partner = await client.post("/v1/partners", json={"name": "Fuzz", "email": "fuzz@example.com"})
        offer = await client.post("/v1/offers", json={
            "name": "Fuzz", "destination_url": "https://shop.example/?t={transaction_id}",
            "currency": "USD", "payout": {"type": "cpa", "amount": "1.00"}})
    assert partner.status_code in (201, 202) and offer.status_code in (201, 202), (partner.text, offer.text)
    return {"partner_id": partner.json()["partner_id"], "offer_id": offer.json()["offer_id"]}


async def a_partner_with_a_key(service_apps: dict[str, ServiceApp]) -> tuple[dict[str, str], str]:
    """A partner (approved on a public offer) whose key the gateway knows, through the real
    path: issued by partners, published, applied by the gateway's consumer."""
    ids = await existing_ids(service_apps["partners"])
    async with service_apps["partners"].client(headers=ADMIN) as client:
        issued = await client.post(f"/v1/partners/{ids['partner_id']}/api-keys")
    assert issued.status_code in (201, 202), issued.text
    api_key = str(issued.json()["api_key"])

    async def known() -> bool:
        async with service_apps["gateway"].client(headers={"X-Api-Key": api_key}) as client:
            return (await client.get("/v1/me")).status_code == 200

    for _ in range(300):
        if await known():
            return ids, api_key
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never learnt the partner's key")


@pytest.mark.parametrize("name", FUZZED)
async def test_no_request_gets_a_5xx_and_every_4xx_has_the_error_shape(
    service_apps: dict[str, ServiceApp], name: str
) -> None:
    service = service_apps[name]
    known_ids = await existing_ids(service) if name == "partners" else {}
    partner_key = None
    if name == "gateway":
        known_ids, partner_key = await a_partner_with_a_key(service_apps)
    # In a worker thread: the served apps' consumers and relays run on this loop meanwhile.
    failures = await asyncio.to_thread(fuzz_service, service, known_ids, partner_key)
    assert not failures, "\n".join(failures)
