"""Money sent as a JSON number keeps every digit through an admin API (partners)."""

from __future__ import annotations

from security_fixtures import ADMIN, ServiceApp

AMOUNT = "123456789012.12345678"  # 20 significant digits: a float keeps about 17


async def test_an_offer_payout_sent_as_a_json_number_keeps_every_digit(
    service_apps: dict[str, ServiceApp],
) -> None:
    body = ('{"name": "Precise", "destination_url": "https://shop.example/p?t={transaction_id}", '
            f'"currency": "USD", "payout": {{"type": "cpa", "amount": {AMOUNT}}}}}')
    async with service_apps["partners"].client(headers=ADMIN) as partners:
        created = await partners.post("/v1/offers", content=body,
                                      headers={"Content-Type": "application/json"})
        assert created.status_code in (201, 202), created.text
        assert created.json()["payout"]["amount"] == AMOUNT
        stored = await partners.get(f"/v1/offers/{created.json()['offer_id']}")
        assert stored.json()["payout"]["amount"] == AMOUNT
