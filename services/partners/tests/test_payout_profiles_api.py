"""The tax and payment profile routes over a running partners service: finance records
them, every staff member sees completeness, only finance reads the details, and the log
carries the details sealed, never a bank or tax number in clear."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from partners_fixtures import ADMIN_TOKEN, RunningPartners, assert_error, partner_body, published_until

from afflux_contracts import PartnerPayoutProfileSet
from afflux_infra.testing import SessionInfrastructure
from afflux_plumbing.auth import service_token_entry

KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
FINANCE, READER = "finance-like-token", "reader-token"
IBAN = "DE89370400440532013000"
TAX = {"legal_name": "Lena Reviews GmbH", "country": "DE", "vat_id": "DE136695976", "tax_id": "27/123/45678",
       "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115"}, "tax_form": "w8ben_e"}


@pytest.fixture(scope="module")
async def service(infra: SessionInfrastructure) -> AsyncIterator[RunningPartners]:
    tokens = " ".join((service_token_entry("books", FINANCE, ["partners.profiles.write",
                                                               "partners.profiles.details", "partners.read"]),
                       service_token_entry("reader", READER, ["partners.read"])))
    async with RunningPartners(infra.new_database(), infra.bootstrap_servers, AFFLUX_PROFILE_KEYS=KEY,
                               AFFLUX_SERVICE_TOKENS=tokens) as running:
        yield running


def client(service: RunningPartners, token: str) -> httpx.AsyncClient:
    made: httpx.AsyncClient = service.client(headers={"Authorization": f"Bearer {token}"})
    return made


async def test_finance_records_a_profile_that_becomes_complete_and_the_log_never_shows_the_numbers(
        service: RunningPartners) -> None:
    async with client(service, ADMIN_TOKEN) as admin, client(service, FINANCE) as finance, \
            client(service, READER) as reader:
        partner_id = (await admin.post("/v1/partners", json=partner_body())).json()["partner_id"]
        first = await finance.put(f"/v1/partners/{partner_id}/tax-profile", json=TAX)
        assert first.status_code == 200, first.text
        assert (first.json()["complete"], first.json()["missing"]) == (False, ["payment_method"])
        method = {"type": "sepa", "account_holder": "Lena Reviews GmbH",
                  "iban": "DE89 3704 0044 0532 0130 00"}
        second = await finance.put(f"/v1/partners/{partner_id}/payment-method", json=method)
        assert second.status_code == 200, second.text
        seen = (await reader.get(f"/v1/partners/{partner_id}/payout-profile")).json()
        assert (seen["complete"], seen["missing"], seen["payment_method"], seen["details"]) == \
            (True, [], "sepa", None)
        assert_error(await reader.get(f"/v1/partners/{partner_id}/payout-profile/details"),
                     403, "forbidden_scope")
        details = (await finance.get(f"/v1/partners/{partner_id}/payout-profile/details")).json()["details"]
        assert details["payment_method"]["iban"] == IBAN and details["tax"]["vat_id"] == "DE136695976"
    records = await published_until(
        service.kafka_bootstrap, lambda e: isinstance(e.payload, PartnerPayoutProfileSet)
        and e.payload.partner_id == partner_id, lambda found: len(found) == 2)
    assert [getattr(r.envelope.payload, "complete", None) for r in records] == [False, True]
    for record in records:
        text = record.envelope.model_dump_json()
        for secret in (IBAN, "136695976", "27/123", "Hauptstr"):
            assert secret not in text


async def test_a_bad_iban_or_vat_id_is_a_422_naming_it_and_nothing_is_recorded(
        service: RunningPartners) -> None:
    async with client(service, ADMIN_TOKEN) as admin:
        partner_id = (await admin.post("/v1/partners", json=partner_body())).json()["partner_id"]
        bad_iban = {"type": "sepa", "account_holder": "Lena", "iban": "DE89370400440532013001"}
        assert_error(await admin.put(f"/v1/partners/{partner_id}/payment-method", json=bad_iban),
                     422, "invalid_value", "iban")
        assert_error(await admin.put(f"/v1/partners/{partner_id}/tax-profile", json={**TAX, "vat_id": "DE1"}),
                     422, "invalid_value", "vat_id")
        seen = (await admin.get(f"/v1/partners/{partner_id}/payout-profile")).json()
        assert (seen["complete"], seen["updated_at"]) == (False, None)
        assert_error(await admin.put("/v1/partners/" + "0" * 32 + "/tax-profile", json=TAX),
                     404, "partner_not_found")
