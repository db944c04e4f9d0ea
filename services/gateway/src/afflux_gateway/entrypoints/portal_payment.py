"""The portal's "Tax & payment details" page: the partner's owner records its tax profile
and payment method with a form, as ``PUT /v1/me/tax-profile`` and ``PUT /v1/me/payment-method``
record them (``record_part``: partners checks, seals and records; the gateway keeps none).

Everyone signed in for the partner sees whether the profile is complete and what is
missing (the log's summary, as the gateway projects it); only an owner user changes it.
The page never shows a bank or tax number back: the API's partner-facing answer has none,
so each form is filled whole (a part is replaced, not merged). A refusal (a bad IBAN, say)
re-renders the form with the field named and what was typed, as a 422, never a 5xx.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from afflux_gateway.adapters.service_clients import PartnersClient
from afflux_gateway.entrypoints.payout_profile import record_part
from afflux_gateway.entrypoints.portal import SECURITY_HEADERS, Portal, read_form
from afflux_gateway.entrypoints.session import Session, csrf_ok
from afflux_plumbing.http import ApiError

ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region")
TAX_FIELDS = ("legal_name", "country", "tax_id", "vat_id", "tax_form")
METHOD_FIELDS = {
    "paypal": ("email",),
    "sepa": ("account_holder", "iban", "bic"),
    "wire": ("account_holder", "account_number", "bank_name", "swift_bic", "bank_country", "routing_number"),
}
TAX_FORMS = ("w9", "w8ben", "w8ben_e", "none_needed")
PARTS = {"tax": "tax-profile", "method": "payment-method"}
TYPED_BACK = ("legal_name", "line1", "line2", "city", "postal_code", "region", "country", "tax_form",
              "type", "email", "account_holder", "bank_name", "bank_country")
"""What a refused form shows again as typed: names and places, never a bank or tax number."""


def tax_body(form: dict[str, str]) -> dict[str, Any]:
    """The tax part as the API takes it (a blank field is left out: not given yet)."""
    address = {name: form[name].strip() for name in ADDRESS_FIELDS if form.get(name, "").strip()}
    body: dict[str, Any] = {name: form[name].strip() for name in TAX_FIELDS if form.get(name, "").strip()}
    if "country" in body:
        body["country"] = body["country"].upper()
    return {**body, "address": address} if address else body


def method_body(form: dict[str, str]) -> dict[str, Any]:
    """The payment method of the type chosen, with that type's fields only."""
    kind = form.get("type", "")
    fields = METHOD_FIELDS.get(kind, ())
    return {"type": kind, **{name: form[name].strip() for name in fields if form.get(name, "").strip()}}


class PaymentDetails:
    def __init__(self, portal: Portal, partners: PartnersClient) -> None:
        self.portal = portal
        self.partners = partners

    def may_edit(self, session: Session) -> bool:
        """An owner user of the partner (not a member, not a key's session)."""
        user = self.portal.user_of(session)
        return user is not None and user.role == "owner"

    def page(self, session: Session, status: int = 200, profile: dict[str, Any] | None = None,
             notice: str | None = None, error: ApiError | None = None, part: str | None = None,
             typed: dict[str, str] | None = None) -> Response:
        """The page; ``profile`` is a just-recorded answer, else the projected summary."""
        found = profile if profile is not None else self.portal.views.payout_profile(session.partner_id)
        return self.portal.page(
            "payment_details.html", session, status, profile=found, notice=notice, error=error,
            part=part, typed=typed or {}, editable=self.may_edit(session), tax_forms=TAX_FORMS,
            methods=tuple(METHOD_FIELDS))

    async def record(self, request: Request, part: str) -> Response:
        session = await run_in_threadpool(self.portal.session, request)
        form = await read_form(request)
        if not csrf_ok(form.get("csrf"), session.nonce, self.portal.keys):
            return PlainTextResponse("the form expired; reload the page", 403, headers=SECURITY_HEADERS)
        if not await run_in_threadpool(self.may_edit, session):
            return await run_in_threadpool(self.page, session, 403, None,
                                           "Only an owner of your account changes these details.")
        body = tax_body(form) if part == "tax" else method_body(form)
        try:
            answer = await record_part(self.partners, PARTS[part], session.partner_id, body)
        except ApiError as refused:
            typed = {name: form.get(name, "") for name in TYPED_BACK}
            return await run_in_threadpool(self.page, session, refused.status, None, None, refused, part,
                                           typed)
        return await run_in_threadpool(self.page, session, 200, answer, "Saved.")


def mount_payment_details(app: FastAPI, details: PaymentDetails) -> None:
    @app.get("/portal/payment-details", include_in_schema=False)
    def payment_details(request: Request) -> Response:
        return details.page(details.portal.session(request))

    @app.post("/portal/payment-details/tax", include_in_schema=False)
    async def record_tax(request: Request) -> Response:
        return await details.record(request, "tax")

    @app.post("/portal/payment-details/method", include_in_schema=False)
    async def record_method(request: Request) -> Response:
        return await details.record(request, "method")
