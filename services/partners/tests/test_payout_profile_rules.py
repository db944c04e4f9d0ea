"""The tax and payment profile's rules: what is refused (422, naming the field), what only
leaves the profile incomplete, and the aggregate that keeps the details sealed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from afflux_partners.domain.payout_profile import (
    PayoutProfile,
    check_payment_method,
    check_tax_profile,
    missing,
    summary_of,
)
from afflux_partners.domain.rules import RuleViolation
from afflux_plumbing.auth import ROLES
from afflux_plumbing.sealing import FernetSealer, SealingUnavailable, UnreadableSeal

KEY = "l3Yq0Gx1lq8r5yTn2oH0bq3mJm5b9H0d1p9wqH1aZ2k="
ADDRESS = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115"}
GERMAN = {"legal_name": "Lena Reviews GmbH", "address": ADDRESS, "country": "de", "vat_id": "DE 136 695 976",
          "tax_form": "w8ben_e", "tax_id": "27/123/45678"}


def refused(field: str, check: object, *args: object) -> None:
    with pytest.raises(RuleViolation) as caught:
        check(*args)  # type: ignore[operator]
    assert caught.value.field == field, caught.value


def test_a_german_company_with_a_sepa_account_is_complete() -> None:
    tax = check_tax_profile(GERMAN)
    method = check_payment_method({"type": "sepa", "account_holder": "Lena Reviews GmbH",
                                   "iban": "DE89 3704 0044 0532 0130 00"})
    assert (tax["country"], tax["vat_id"]) == ("DE", "DE136695976")
    assert method == {"type": "sepa", "account_holder": "Lena Reviews GmbH", "iban": "DE89370400440532013000",
                      "bic": "COBADEFFXXX"}
    assert summary_of(tax, method).complete


def test_an_iban_with_a_wrong_checksum_is_refused_naming_the_iban() -> None:
    refused("iban", check_payment_method,
            {"type": "sepa", "account_holder": "L", "iban": "DE89370400440532013001"})


def test_a_malformed_bic_is_refused() -> None:
    refused("bic", check_payment_method, {"type": "sepa", "account_holder": "L",
                                          "iban": "DE89370400440532013000", "bic": "COBA"})


def test_a_vat_id_with_wrong_check_digits_is_refused() -> None:
    refused("vat_id", check_tax_profile, {**GERMAN, "vat_id": "DE136695977"})


def test_a_w9_needs_a_us_person_and_a_us_taxpayer_id() -> None:
    refused("tax_form", check_tax_profile, {"country": "DE", "tax_form": "w9"})
    refused("tax_id", check_tax_profile, {"country": "US", "tax_form": "w9", "tax_id": "12-34"})
    us = check_tax_profile({"legal_name": "Ann", "address": ADDRESS, "country": "US", "tax_form": "w9"})
    assert missing(us, {"type": "paypal", "email": "ann@deals.example"}) == ("tax_id",)


def test_an_unknown_country_and_an_unknown_method_are_refused() -> None:
    refused("country", check_tax_profile, {"country": "XX"})
    refused("type", check_payment_method, {"type": "cheque"})
    refused("bank_country", check_payment_method,
            {"type": "wire", "account_holder": "A", "account_number": "12345678", "bank_name": "B",
             "swift_bic": "CHASUS33", "bank_country": "ZZ"})


def test_what_is_not_given_yet_is_listed_as_missing() -> None:
    assert missing({}, None) == ("legal_name", "address", "country", "tax_form", "payment_method")
    assert missing(check_tax_profile(GERMAN), None) == ("payment_method",)


def test_the_details_are_sealed_and_only_the_key_opens_them() -> None:
    sealer = FernetSealer(KEY)
    sealed = sealer.seal({"iban": "DE89370400440532013000"})
    assert "DE89" not in sealed and sealer.unseal(sealed) == {"iban": "DE89370400440532013000"}
    other = FernetSealer("Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=")
    with pytest.raises(UnreadableSeal):
        other.unseal(sealed)
    rotated = FernetSealer(f"Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg=,{KEY}")
    assert rotated.unseal(sealed) == {"iban": "DE89370400440532013000"}
    with pytest.raises(SealingUnavailable):
        FernetSealer("").seal({})


def test_the_profile_aggregate_keeps_its_summary_and_the_sealed_details() -> None:
    at = datetime(2026, 12, 2, tzinfo=UTC)
    profile = PayoutProfile.record("p1", summary_of({}, None), "sealed-1", ("tax_profile",), at)
    tax = check_tax_profile(GERMAN)
    profile.change(summary_of(tax, {"type": "paypal"}), "sealed-2", ("payment_method",), at)
    assert profile.summary.complete and profile.sealed == "sealed-2"
    assert [type(e).__name__ for e in profile.collect_events()] == ["Created", "Set"]


def test_only_finance_and_the_owner_may_read_the_details_or_set_them() -> None:
    allowed = {role for role, scopes in ROLES.items() if "partners.profiles.details" in scopes}
    assert allowed == {"owner", "finance"}
    assert {role for role, scopes in ROLES.items() if "partners.profiles.write" in scopes} == allowed
