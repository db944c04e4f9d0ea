"""The tax and payment profile routes of the partners admin API.

Who sees what: finance (``partners.profiles.write``) records a partner's tax profile
and payment method, and only finance (``partners.profiles.details``) reads them in
full; every staff member (``partners.read``) sees what a profile *is*: complete or
not, what is missing, the country, the tax form and the kind of payment method. A
write answers like every partners write: once ``PartnerPayoutProfileSet`` is on the
log (else 202), with the details sealed there. Without ``AFFLUX_PROFILE_KEYS`` the
routes answer 503 (nothing can be sealed or opened).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from afflux_partners.application.payout_profiles import Details, PayoutProfiles
from afflux_partners.domain.payout_profile import PayoutProfile
from afflux_partners.entrypoints.http import PENDING, acknowledged
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.auth import Credentials, needs
from afflux_plumbing.http import admin_auth, error_body
from afflux_plumbing.sealing import SealingUnavailable, UnreadableSeal

Line = Field(default=None, max_length=200)


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: str | None = Line
    line2: str | None = Line
    city: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)


class TaxProfileIn(BaseModel):
    """The whole tax part (what is left out is cleared); it may be incomplete."""

    model_config = ConfigDict(extra="forbid")

    legal_name: str | None = Line
    address: AddressIn | None = None
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2")
    tax_id: str | None = Field(default=None, max_length=40)
    vat_id: str | None = Field(default=None, max_length=40)
    tax_form: Literal["w9", "w8ben", "w8ben_e", "none_needed"] | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class PaymentMethodIn(BaseModel):
    """``paypal``: email; ``sepa``: account_holder, iban, bic (else the IBAN's bank's);
    ``wire``: account_holder, account_number, bank_name, swift_bic, bank_country,
    routing_number?, bank_address?."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["paypal", "sepa", "wire"]
    email: str | None = Field(default=None, max_length=254)
    account_holder: str | None = Field(default=None, max_length=70)
    iban: str | None = Field(default=None, max_length=50)
    bic: str | None = Field(default=None, max_length=11)
    account_number: str | None = Field(default=None, max_length=40)
    bank_name: str | None = Field(default=None, max_length=140)
    swift_bic: str | None = Field(default=None, max_length=11)
    bank_country: str | None = Field(default=None, max_length=2)
    routing_number: str | None = Field(default=None, max_length=9)
    bank_address: str | None = Line

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ProfileOut(BaseModel):
    """What a profile is (every staff member); ``details`` only on the finance route."""

    partner_id: str
    complete: bool
    missing: list[str]
    country: str | None
    tax_form: str | None
    payment_method: str | None
    updated_at: datetime | None
    details: dict[str, Any] | None = None

    @classmethod
    def of(cls, partner_id: str, profile: PayoutProfile | None, details: Details | None = None) -> ProfileOut:
        if profile is None:
            return cls(partner_id=partner_id, complete=False,
                       missing=["legal_name", "address", "country", "tax_form", "payment_method"],
                       country=None, tax_form=None, payment_method=None, updated_at=None,
                       details={"tax": {}, "payment_method": None} if details is not None else None)
        summary = profile.summary
        return cls(partner_id=partner_id, complete=summary.complete, missing=list(summary.missing),
                   country=summary.country, tax_form=summary.tax_form, payment_method=summary.payment_method,
                   updated_at=profile.set_at,
                   details={"tax": details.tax, "payment_method": details.payment_method}
                   if details is not None else None)


async def _unavailable(_: Request, error: Exception) -> Response:
    return JSONResponse(error_body("profiles_unavailable", str(error)), status_code=503)


def mount_payout_profiles(app: FastAPI, profiles: PayoutProfiles, settings: PartnersSettings,
                          credentials: Credentials) -> None:
    app.add_exception_handler(SealingUnavailable, _unavailable)
    app.add_exception_handler(UnreadableSeal, _unavailable)
    app.include_router(profile_routes(profiles, settings, credentials))


def profile_routes(profiles: PayoutProfiles, settings: PartnersSettings,
                   credentials: Credentials) -> APIRouter:
    router = APIRouter(prefix="/v1/partners/{partner_id}", tags=["payout profiles"],
                       dependencies=[admin_auth(credentials)])

    def ack(partner_id: str, profile: PayoutProfile) -> Response:
        return acknowledged(profiles.store, settings, ProfileOut.of(partner_id, profile))

    @router.put("/tax-profile", response_model=ProfileOut, responses=PENDING,
                openapi_extra=needs("partners.profiles.write"))
    def set_tax_profile(partner_id: str, body: TaxProfileIn) -> Any:
        """The partner's legal name, address, country, tax id, VAT id and tax form (the whole
        tax part: what is left out is cleared). Each value given is checked (a VAT id's
        check digits, a W-9's US taxpayer id): a bad one is 422 naming it."""
        return ack(partner_id, profiles.set_tax_profile(partner_id, body.fields()))

    @router.put("/payment-method", response_model=ProfileOut, responses=PENDING,
                openapi_extra=needs("partners.profiles.write"))
    def set_payment_method(partner_id: str, body: PaymentMethodIn) -> Any:
        """How the partner is paid: PayPal, SEPA (the IBAN's checksum and the BIC checked)
        or wire; the whole method, all of it needed."""
        return ack(partner_id, profiles.set_payment_method(partner_id, body.fields()))

    @router.get("/payout-profile", response_model=ProfileOut, openapi_extra=needs("partners.read"))
    def get_profile(partner_id: str) -> Any:
        """Whether the profile is complete and what is missing (no bank or tax number)."""
        return ProfileOut.of(partner_id, profiles.profile(partner_id))

    @router.get("/payout-profile/details", response_model=ProfileOut,
                openapi_extra=needs("partners.profiles.details"))
    def get_details(partner_id: str) -> Any:
        """The profile in full: legal name, address, tax and VAT ids, payment details."""
        profile = profiles.profile(partner_id)
        return ProfileOut.of(partner_id, profile, profiles.details(profile))

    return router
