"""Samples of the partners log's onboarding events (sign-up, verdicts, partner users),
kept beside ``contract_samples`` which lists them with every other event."""

from __future__ import annotations

from datetime import UTC, datetime

from afflux_contracts import Event, PartnerStatus, PartnerStatusChanged
from afflux_contracts.partners import (
    PartnerApplied,
    PartnerUserActivated,
    PartnerUserInvited,
    PartnerUserPasswordReset,
    PartnerUserRemoved,
    PartnerUserRole,
    PartnerUserStatus,
)

SIGNED_UP = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
USER = {"partner_id": "p9", "user_id": "usr_" + "7" * 32, "email": "lena@reviews.example", "name": "Lena"}

ONBOARDING: list[Event] = [
    PartnerApplied(partner_id="p9", name="Lena's Reviews", email="lena@reviews.example",
                   company="Reviews GmbH", website="https://reviews.example",
                   traffic_sources=("website", "email"), country="DE",
                   terms_accepted_at=SIGNED_UP, email_verified_at=SIGNED_UP),
    PartnerStatusChanged(partner_id="p9", status=PartnerStatus.ACTIVE, previous_status=PartnerStatus.PENDING,
                         reason="a fit for the outdoor offers"),
    PartnerUserInvited(**USER, role=PartnerUserRole.OWNER, status=PartnerUserStatus.INVITED,
                       expires_at=datetime(2026, 11, 9, 9, 30, tzinfo=UTC)),
    PartnerUserActivated(**USER, role=PartnerUserRole.OWNER, status=PartnerUserStatus.ACTIVE),
    PartnerUserPasswordReset(partner_id="p9", user_id=USER["user_id"], reset_at=SIGNED_UP),
    PartnerUserRemoved(**USER, role=PartnerUserRole.MEMBER, status=PartnerUserStatus.REMOVED,
                       removed_by="usr_" + "8" * 32),
]
