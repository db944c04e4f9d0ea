"""The partner's own tax and payment profile through the gateway: ``PUT /v1/me/tax-profile``
and ``PUT /v1/me/payment-method`` with the partner's ``X-Api-Key``.

The gateway keeps none of it: it forwards the body to the partners service (which checks,
seals and records it) with its own service credential (scope ``partners.profiles.write``)
for the partner the key names, never one named in the request, and answers what partners
answers: the profile's completeness, never its numbers. A refusal (a bad IBAN, say) keeps
its status, code and field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body

from afflux_gateway.adapters.service_clients import PartnersClient, PartnersUnavailable
from afflux_gateway.application.reads import KeyHolder
from afflux_gateway.entrypoints.auth import Guard, partner_auth
from afflux_plumbing.http import ApiError

PARTS = {"tax-profile": "your legal name, address, country, tax id, VAT id and tax form",
         "payment-method": "how you are paid: paypal (email), sepa (account_holder, iban, bic) or wire"}


async def record_part(partners: PartnersClient, part: str, partner_id: str,
                      body: dict[str, Any]) -> dict[str, Any]:
    """Record one part (``tax-profile`` or ``payment-method``) of ``partner_id``'s profile
    with partners; the API and the portal's form both record through it, so both refuse
    alike: ``ApiError`` with partners' status, code and field (503 when it cannot answer)."""
    path = f"/v1/partners/{quote(partner_id, safe='')}/{part}"
    try:
        answer = await partners.call("PUT", path, body)
    except PartnersUnavailable as error:
        raise ApiError(503, "unavailable", "your profile cannot be recorded right now; retry later",
                       headers={"Retry-After": "5"}) from error
    if answer.status >= 400:
        found = answer.body.get("error")
        refusal = found if isinstance(found, dict) else {}
        raise ApiError(answer.status, str(refusal.get("code", "refused")),
                       str(refusal.get("message", "the profile was refused")), refusal.get("field"))
    return answer.body


def profile_router(guard: Guard, partners: PartnersClient) -> APIRouter:
    router = APIRouter(prefix="/v1/me", tags=["partner"])
    me = partner_auth(guard)

    async def forward(part: str, partner_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await record_part(partners, part, partner_id, body)

    @router.put("/tax-profile")
    async def set_tax_profile(body: dict[str, Any] = Body(...),  # noqa: B008
                              holder: KeyHolder = me) -> dict[str, Any]:
        """Record your tax profile (the whole of it): legal_name, address {line1, line2?,
        city, postal_code?, region?}, country, tax_id, vat_id, tax_form (w9, w8ben, w8ben_e,
        none_needed). Answers whether your profile is complete and what is missing."""
        return await forward("tax-profile", holder.partner_id, body)

    @router.put("/payment-method")
    async def set_payment_method(body: dict[str, Any] = Body(...),  # noqa: B008
                                 holder: KeyHolder = me) -> dict[str, Any]:
        """Record how you are paid: ``{"type": "paypal", "email"}``, ``{"type": "sepa",
        "account_holder", "iban", "bic"?}`` or ``{"type": "wire", "account_holder",
        "account_number", "bank_name", "swift_bic", "bank_country", "routing_number"?}``."""
        return await forward("payment-method", holder.partner_id, body)

    return router
