"""Partners writes with nearly valid bodies: valid where the OpenAPI schema cannot say
what valid is (URLs, e-mail addresses, currencies, existing ids), generated everywhere
else, so that requests reach the domain's rules. Money goes in as JSON numbers of any
size and precision as well as strings. Whatever the body: no 5xx, every 4xx in the
contract's error shape, and an accepted amount is stored with every digit.

Short by default; ``AFFLUX_FUZZ_EXAMPLES`` scales it like the OpenAPI fuzzing
(``test_fuzz_openapi.py`` says how to run it long).
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_fixtures import ADMIN, ServiceApp, contract_violation

pytestmark = pytest.mark.fuzz

EXAMPLES = 5 * int(os.environ.get("AFFLUX_FUZZ_EXAMPLES", "6"))

json_numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?",
                             fullmatch=True)
small_numbers = st.from_regex(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?", fullmatch=True)
money = st.one_of(small_numbers.map(lambda literal: ("number", literal)),
                  json_numbers.map(lambda literal: ("number", literal)),
                  st.text(max_size=40).map(lambda text: ("string", text)),
                  st.sampled_from(["12.50", "0", "-1", "1e3", "NaN", "Infinity", "0.000000001"])
                  .map(lambda text: ("string", text)))
names = st.one_of(st.just("Running shoes"), st.text(max_size=300))
VALID_URLS = ["https://shop.example/land?t={transaction_id}&s={sub1}", "http://a.example/{offer_id}/{partner_id}"]
urls = st.one_of(st.sampled_from(VALID_URLS), st.sampled_from(VALID_URLS), st.sampled_from(VALID_URLS),
                 st.sampled_from(["https://{sub1}.example/", "https://shop.example/" + "p" * 3000,
                                  "ftp://shop.example/", ""]),
                 st.text(max_size=100))
IPS = ["10.0.0.1", "::1", "300.1.1.1", "x", "0.0.0.0/0"]
currencies = st.one_of(st.just("USD"), st.sampled_from(["usd", "JPY", "KWD", "XTS", "US", "EURO", "€€€"]))


def mostly(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    """A valid value three times in four."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid),
                     st.sampled_from(invalid))


def encoded(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, where ``("number", literal)`` values are written as bare JSON numbers."""
    literals: dict[str, str] = {}

    def tokenized(value: Any) -> Any:
        if isinstance(value, tuple):
            kind, text = value
            if kind == "string":
                return text
            literals[f"__number_{len(literals)}__"] = text
            return f"__number_{len(literals) - 1}__"
        if isinstance(value, dict):
            return {key: tokenized(item) for key, item in value.items()}
        return value

    text = json.dumps(tokenized(body))
    for key, literal in literals.items():
        text = text.replace(f'"{key}"', literal)
    return text.encode()


def terms() -> st.SearchStrategy[dict[str, Any]]:
    """Terms as the domain wants them (an amount for CPA and CPC, a percent for CPS)
    half of the time, any combination otherwise."""
    amount = small_numbers.map(lambda literal: ("number", literal))
    percent = st.from_regex(r"(100|[1-9]?[0-9])(\.[0-9]{1,4})?", fullmatch=True).map(lambda p: ("number", p))
    consistent = st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["cpa", "cpc"]), "amount": amount}),
        st.fixed_dictionaries({"type": st.just("cps"), "percent": percent}),
        st.fixed_dictionaries({"type": st.just("cpa_cps"), "amount": amount, "percent": percent}))
    anything = st.fixed_dictionaries(
        {"type": mostly(["cpa", "cps", "cpa_cps", "cpc"], ["cpm", ""])},
        optional={"amount": money, "percent": money})
    return st.one_of(consistent, anything)


def offers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": names, "destination_url": urls, "currency": currencies, "payout": terms()},
        optional={"revenue": terms(), "fallback_url": urls,
                  "attribution_window_days": st.integers(-10, 10**20),
                  "status": mostly(["active", "paused", "pending", "deleted"], ["gone"]),
                  "visibility": mostly(["public", "require_approval", "private"], ["secret"]),
                  "conversion_security": st.fixed_dictionaries({}, optional={
                      "token_required": st.booleans(), "pixel_allowed": st.booleans(),
                      "allowed_ips": st.lists(st.sampled_from(IPS), max_size=3)})})


def partners() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": names, "email": st.one_of(st.emails(), st.text(max_size=50))},
        optional={"type": st.text(max_size=50), "tags": st.lists(st.text(max_size=40), max_size=5),
                  "status": mostly(["pending", "active", "inactive", "suspended", "rejected"], ["x"]),
                  "billing": st.fixed_dictionaries(
                      {"currency": currencies},
                      optional={"frequency": st.sampled_from(["weekly", "biweekly", "monthly", "manual",
                                                              "quarterly"]),
                                "minimum_payout": money})})


def relationships() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"approved": st.booleans()},
        optional={"payout": terms(), "revenue": terms(),
                  "coupon_codes": st.lists(st.text(max_size=40), max_size=5), "postback_url": urls})


def stored_exactly(sent: Any, answered: Any) -> bool:
    """An amount sent as a JSON number comes back as the same number (trailing zeros aside)."""
    if not (isinstance(sent, tuple) and sent[0] == "number"):
        return True
    try:
        return Decimal(sent[1]) == Decimal(answered)
    except (InvalidOperation, TypeError):
        return False


def fuzz_writes(app: Any, known: dict[str, str]) -> None:
    """Runs in a thread of its own, with an event loop of its own for the ASGI client."""
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://partners",
                               headers={**ADMIN, "Content-Type": "application/json"})
    writes = st.one_of(
        st.tuples(st.just("/v1/offers"), offers()),
        st.tuples(st.just("/v1/partners"), partners()),
        st.tuples(st.just(f"/v1/offers/{known['offer_id']}/partners/{known['partner_id']}"),
                  relationships()))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 250,
              suppress_health_check=list(HealthCheck))
    @given(write=writes)
    def check(write: tuple[str, dict[str, Any]]) -> None:
        path, body = write
        method = "PUT" if "/partners/" in path else "POST"
        response = loop.run_until_complete(client.request(method, path, content=encoded(body)))
        answer = response.json()
        problem = contract_violation(response.status_code, answer)
        assert problem is None, f"{method} {path} {encoded(body)!r}\n  -> {problem}"
        if response.status_code in (200, 201, 202) and "payout" in body and answer.get("payout"):
            assert stored_exactly(body["payout"].get("amount"), answer["payout"]["amount"]), (body, answer)

    try:
        check()
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


async def test_nearly_valid_partners_writes_never_get_a_5xx(service_apps: dict[str, ServiceApp]) -> None:
    partners_app = service_apps["partners"]
    async with partners_app.client(headers=ADMIN) as client:
        partner = await client.post("/v1/partners", json={"name": "Fuzz", "email": "fuzz@example.com"})
        offer = await client.post("/v1/offers", json={
            "name": "Fuzz", "destination_url": "https://shop.example/?t={transaction_id}",
            "currency": "USD", "payout": {"type": "cpa", "amount": "1.00"}})
    known = {"partner_id": partner.json()["partner_id"], "offer_id": offer.json()["offer_id"]}
    # In a worker thread: the relay the writes wait for runs on this loop meanwhile.
    await asyncio.to_thread(fuzz_writes, partners_app.app, known)
