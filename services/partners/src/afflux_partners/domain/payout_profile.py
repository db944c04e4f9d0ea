"""A partner's tax and payment profile: what finance needs before it may pay the partner.

Numbers are checked with maintained libraries rather than home-made patterns: an IBAN's
checksum, length and country format and a BIC's shape with ``schwifty``; a VAT id's
format and check digits with ``python-stdnum`` (its EU module for EU prefixes, the
country's own otherwise); a US taxpayer id (SSN, EIN, ITIN) with ``stdnum.us.tin``;
countries with ``pycountry`` (ISO 3166-1). A value that fails is refused (422, naming
the field); what is simply not given yet is recorded and makes the profile incomplete.

The tax part may be filled in a step at a time; a payment method is all or nothing
(a half-given bank account pays nobody). A profile is *complete* when it has a legal
name, an address, a country, a tax form, a tax id where the form needs one (a W-9) and
a payment method; ``missing`` lists what is not there, in this order.

The profile itself holds the details only sealed (the application seals them before
they reach the event store): the aggregate knows what the profile *is*, never what it
*says*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import pycountry
import stdnum
from eventsourcing.domain import Aggregate, event
from schwifty import BIC, IBAN
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.us import tin as us_tin

from afflux_partners.domain.rules import RuleViolation, check_email

TAX_FORMS = ("w9", "w8ben", "w8ben_e", "none_needed")
METHODS = ("paypal", "sepa", "wire")
TAX_FIELDS = ("legal_name", "address", "country", "tax_id", "vat_id", "tax_form")
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region")
REQUIRED = ("legal_name", "address", "country", "tax_form")

PROFILE_CREATED = "afflux_partners:PayoutProfile.Created"
PROFILE_SET = "afflux_partners:PayoutProfile.Set"
NAMESPACE = UUID("0b7e5d1c-6a43-4f0e-9d2a-5c1f8e3b7a90")
"""Partner ids map to profile aggregate ids in this namespace: never change it."""

_TAX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{1,38}[A-Za-z0-9]$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9]{4,34}$")
_ROUTING = re.compile(r"^[0-9]{9}$")


def profile_id(partner_id: str) -> UUID:
    return uuid5(NAMESPACE, f"payout-profile:{partner_id}")


def _text(value: Any, field: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise RuleViolation(field, f"must be text of 1 to {limit} characters")
    return " ".join(value.split())


def _optional(value: Any, field: str, limit: int = 200) -> str | None:
    return None if value is None or value == "" else _text(value, field, limit)


def check_country(value: Any, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code (any case)."""
    code = _text(value, field, 2).upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise RuleViolation(field, f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def check_address(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise RuleViolation("address", "must be an object with line1, city and postal_code (line2, region)")
    unknown = sorted(set(value) - set(ADDRESS_FIELDS))
    if unknown:
        raise RuleViolation(f"address.{unknown[0]}", "is not a field of an address")
    return {"line1": _text(value.get("line1"), "address.line1"),
            "line2": _optional(value.get("line2"), "address.line2"),
            "city": _text(value.get("city"), "address.city", 100),
            "postal_code": _optional(value.get("postal_code"), "address.postal_code", 20),
            "region": _optional(value.get("region"), "address.region", 100)}


def check_vat_id(value: str, country: str | None) -> str:
    """A VAT id checked by its prefix's rules (EU) or the country's (``stdnum``)."""
    raw = _text(value, "vat_id", 40)
    try:
        if raw[:2].lower() in eu_vat.MEMBER_STATES or raw[:2].upper() == "EL":
            return str(eu_vat.validate(raw))
        module = stdnum.get_cc_module(country.lower(), "vat") if country else None
        if module is None:
            raise RuleViolation("vat_id", f"{raw!r} is not a VAT id: give it with its EU country prefix, "
                                          "or a country whose VAT ids can be checked")
        return str(module.validate(raw))
    except ValidationError as error:
        raise RuleViolation("vat_id", f"{raw!r} is not a valid VAT id ({error})") from error


def check_tax_id(value: str, tax_form: str | None) -> str:
    """A W-9's tax id is a US TIN (SSN, EIN or ITIN); any other is kept as given, if it
    looks like an id."""
    raw = _text(value, "tax_id", 40)
    if tax_form == "w9":
        try:
            return str(us_tin.validate(raw))
        except ValidationError as error:
            message = f"a W-9 needs a US taxpayer id (SSN, EIN or ITIN): {error}"
            raise RuleViolation("tax_id", message) from error
    if not _TAX_ID.fullmatch(raw):
        raise RuleViolation("tax_id", "letters, digits, spaces, '.', '/' and '-', 3 to 40 characters")
    return raw


def check_tax_profile(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The tax part, each value given checked and in canonical form (None: not given)."""
    unknown = sorted(set(fields) - set(TAX_FIELDS))
    if unknown:
        raise RuleViolation(unknown[0], "is not a field of a tax profile")
    tax_form = fields.get("tax_form")
    if tax_form is not None and tax_form not in TAX_FORMS:
        raise RuleViolation("tax_form", f"one of {', '.join(TAX_FORMS)}")
    country = check_country(fields["country"]) if fields.get("country") else None
    if tax_form == "w9" and country not in (None, "US"):
        raise RuleViolation("tax_form", "a W-9 is for US persons: the country must be US")
    if tax_form in ("w8ben", "w8ben_e") and country == "US":
        raise RuleViolation("tax_form", "a W-8BEN or W-8BEN-E is for foreign persons, not US ones")
    return {
        "legal_name": _optional(fields.get("legal_name"), "legal_name"),
        "address": check_address(fields["address"]) if fields.get("address") is not None else None,
        "country": country,
        "tax_id": check_tax_id(fields["tax_id"], tax_form) if fields.get("tax_id") else None,
        "vat_id": check_vat_id(fields["vat_id"], country) if fields.get("vat_id") else None,
        "tax_form": tax_form,
    }


def check_payment_method(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A whole payment method of its ``type``, checked and in canonical form."""
    kind = fields.get("type")
    checks = {"paypal": _paypal, "sepa": _sepa, "wire": _wire}
    if kind not in checks:
        raise RuleViolation("type", f"one of {', '.join(METHODS)}")
    return {"type": kind, **checks[kind](fields)}


def _only(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - {"type", *allowed})
    if unknown:
        raise RuleViolation(unknown[0], f"is not a field of a {fields['type']} payment method")


def _paypal(fields: Mapping[str, Any]) -> dict[str, Any]:
    _only(fields, ("email",))
    try:
        return {"email": check_email(_text(fields.get("email"), "email", 254))}
    except RuleViolation as error:
        raise RuleViolation("email", error.message, error.code) from error


def _sepa(fields: Mapping[str, Any]) -> dict[str, Any]:
    """IBAN checked (checksum, length, the country's format); the BIC given, or the one the
    IBAN's bank registry names."""
    _only(fields, ("account_holder", "iban", "bic"))
    iban = _iban(fields.get("iban"))
    bic = _bic(fields["bic"], "bic") if fields.get("bic") else (str(iban.bic) if iban.bic else None)
    if bic is None:
        raise RuleViolation("bic", "no BIC is registered for this IBAN's bank: give it")
    return {"account_holder": _text(fields.get("account_holder"), "account_holder", 70),
            "iban": iban.compact, "bic": bic}


def _wire(fields: Mapping[str, Any]) -> dict[str, Any]:
    _only(fields, ("account_holder", "account_number", "bank_name", "swift_bic", "bank_country",
                   "routing_number", "bank_address"))
    number = _text(fields.get("account_number"), "account_number", 34).replace(" ", "")
    if number[:2].isalpha():
        number = _iban(number, "account_number").compact
    elif not _ACCOUNT.fullmatch(number):
        raise RuleViolation("account_number", "an IBAN, or 4 to 34 letters and digits")
    routing = _optional(fields.get("routing_number"), "routing_number", 9)
    if routing is not None and not _ROUTING.fullmatch(routing):
        raise RuleViolation("routing_number", "an ABA routing number is 9 digits")
    return {"account_holder": _text(fields.get("account_holder"), "account_holder", 70),
            "account_number": number, "bank_name": _text(fields.get("bank_name"), "bank_name", 140),
            "swift_bic": _bic(fields.get("swift_bic"), "swift_bic"),
            "bank_country": check_country(fields.get("bank_country"), "bank_country"),
            "routing_number": routing,
            "bank_address": _optional(fields.get("bank_address"), "bank_address", 200)}


def _iban(value: Any, field: str = "iban") -> IBAN:
    try:
        return IBAN(_text(value, field, 50))
    except ValueError as error:
        raise RuleViolation(field, f"not a valid IBAN: {error}") from error


def _bic(value: Any, field: str) -> str:
    try:
        return str(BIC(_text(value, field, 11)))
    except ValueError as error:
        raise RuleViolation(field, f"not a valid BIC: {error}") from error


def missing(tax: Mapping[str, Any], method: Mapping[str, Any] | None) -> tuple[str, ...]:
    """What keeps the profile from paying (empty: complete)."""
    absent = [name for name in REQUIRED if not tax.get(name)]
    if tax.get("tax_form") == "w9" and not tax.get("tax_id"):
        absent.append("tax_id")
    if not method:
        absent.append("payment_method")
    return tuple(absent)


@dataclass(frozen=True)
class Summary:
    """What a profile is, in clear: anyone on staff may see this."""

    country: str | None
    tax_form: str | None
    payment_method: str | None
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def summary_of(tax: Mapping[str, Any], method: Mapping[str, Any] | None) -> Summary:
    return Summary(tax.get("country"), tax.get("tax_form"), method["type"] if method else None,
                   missing(tax, method))


class PayoutProfile(Aggregate):
    """One partner's profile: its summary in clear, its details sealed. Each change
    records the whole profile (``changed``: which part was set)."""

    TOPIC = "afflux_partners:PayoutProfile"

    @staticmethod
    def create_id(partner_id: str, **_: Any) -> UUID:
        return profile_id(partner_id)

    @event("Created", topic=PROFILE_CREATED)
    def __init__(self, partner_id: str, country: str | None, tax_form: str | None,
                 payment_method: str | None, missing: tuple[str, ...], sealed: str,
                 changed: tuple[str, ...], set_at: datetime) -> None:
        self.partner_id = partner_id
        self._keep(country, tax_form, payment_method, missing, sealed, set_at)

    def change(self, summary: Summary, sealed: str, changed: tuple[str, ...], set_at: datetime) -> None:
        self._set(partner_id=self.partner_id, country=summary.country, tax_form=summary.tax_form,
                  payment_method=summary.payment_method, missing=summary.missing, sealed=sealed,
                  changed=changed, set_at=set_at)

    @classmethod
    def record(cls, partner_id: str, summary: Summary, sealed: str, changed: tuple[str, ...],
               set_at: datetime) -> PayoutProfile:
        return cls(partner_id=partner_id, country=summary.country, tax_form=summary.tax_form,
                   payment_method=summary.payment_method, missing=summary.missing, sealed=sealed,
                   changed=changed, set_at=set_at)

    @event("Set", topic=PROFILE_SET)
    def _set(self, partner_id: str, country: str | None, tax_form: str | None, payment_method: str | None,
             missing: tuple[str, ...], sealed: str, changed: tuple[str, ...], set_at: datetime) -> None:
        self._keep(country, tax_form, payment_method, missing, sealed, set_at)

    def _keep(self, country: str | None, tax_form: str | None, payment_method: str | None,
              missing: tuple[str, ...], sealed: str, set_at: datetime) -> None:
        self.summary = Summary(country, tax_form, payment_method, tuple(missing))
        self.sealed = sealed
        self.set_at = set_at
