"""Secrets a caller sends or receives never reach the logs: the admin token (right or
wrong) and an offer's postback token, which the partners API shows once."""

from __future__ import annotations

import logging

import pytest
from security_fixtures import ADMIN, ADMIN_TOKEN, ServiceApp, operations

GUESSED_TOKEN = "guessed-admin-token-5d1c"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record: formatted message, raw arguments and traceback."""
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''} {record.__dict__!r}"
        for record in caplog.records
    ) + caplog.text


async def test_admin_tokens_are_not_logged_whatever_the_request(
    service_apps: dict[str, ServiceApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for service in service_apps.values():
        async with service.client() as client:
            for operation in operations(service.app):
                for headers in (ADMIN, {"Authorization": f"Bearer {GUESSED_TOKEN}"}):
                    await client.request(operation.method, operation.concrete_path, headers=headers,
                                         content=b'{"malformed": ', params={"q": "x"})
    assert caplog.records, "nothing was logged: the capture is not wired"
    text = logged(caplog)
    assert ADMIN_TOKEN not in text and GUESSED_TOKEN not in text


async def test_an_offer_postback_token_is_not_logged(
    service_apps: dict[str, ServiceApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    offer = {"name": "Logged?", "destination_url": "https://shop.example/?t={transaction_id}",
             "currency": "USD", "payout": {"type": "cpa", "amount": "1.00"}}
    async with service_apps["partners"].client(headers=ADMIN) as partners:
        created = await partners.post("/v1/offers", json=offer)
        assert created.status_code in (201, 202), created.text
        token = created.json()["postback_token"]
        await partners.get(f"/v1/offers/{created.json()['offer_id']}")
    assert len(token) >= 16
    assert token not in logged(caplog)
