"""Partners join by themselves: the sign-up, its verification mail, and the application
it becomes once the link is opened.

1. ``sign_up``: the form is checked (``InvalidSignup`` names the field), the abuse
   limits per client address and per email are applied (``TooManySignups``), the
   sign-up is kept under a random id and a mail with a signed, expiring link to it is
   asked of notifications (its idempotency key: the sign-up's id). Whether the address
   applied before is not told: the answer is the same.
2. ``confirm``: the link's sign-up is recorded by partners as an application
   (``PartnerApplied``, the partner ``pending``); partners keeps one per address, so
   a second sign-up from it, or the link opened twice, is the same application.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from afflux_gateway.application.people import Signup, SignupBook
from afflux_gateway.domain.signup import checked_form, wait_for


class TooManySignups(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many sign-ups; retry in {retry_after} s")
        self.retry_after = retry_after


class UnknownSignup(Exception):
    """The link names no sign-up we keep (forgotten after a day, or never made)."""


class ApplicationRefused(Exception):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


class Mailer(Protocol):
    async def send(self, template: str, to: str, data: dict[str, Any], key: str) -> None:
        """``MailUnavailable`` when notifications did not take it."""
        ...


class Applications(Protocol):
    async def record(self, application: dict[str, Any]) -> str:
        """The partner_id of the application (``ApplicationRefused``; ``PartnersUnavailable``)."""
        ...


@dataclass(frozen=True)
class Limits:
    per_address: int
    per_email: int
    period: timedelta
    link_lifetime: timedelta


class SignupDesk:
    def __init__(self, book: SignupBook, mailer: Mailer, applications: Applications, limits: Limits,
                 link_for: Callable[[str, datetime], str]) -> None:
        self.book = book
        self.mailer = mailer
        self.applications = applications
        self.limits = limits
        self.link_for = link_for

    async def sign_up(self, raw: Mapping[str, Any], address: str, now: datetime) -> datetime:
        """Check, count, keep and mail; when the link stops working."""
        form = checked_form(raw)
        by_address, by_email = await asyncio.to_thread(
            self.book.recent_signups, address, form.email, now - self.limits.period)
        waits = [wait for wait in (wait_for(by_address, self.limits.per_address, self.limits.period, now),
                                   wait_for(by_email, self.limits.per_email, self.limits.period, now))
                 if wait is not None]
        if waits:
            raise TooManySignups(max(waits))
        signup = Signup(secrets.token_hex(16), form.email, {**form.as_data(),
                                                            "terms_accepted_at": now.isoformat()},
                        now, None)
        await asyncio.to_thread(self.book.record_signup, signup, address)
        expires = now + self.limits.link_lifetime
        await self.mailer.send("verify_email", form.email, {
            "link": self.link_for(signup.signup_id, expires), "name": form.name,
            "expires_at": expires.isoformat(timespec="minutes")}, key=f"signup:{signup.signup_id}")
        return expires

    async def confirm(self, signup_id: str, now: datetime) -> str:
        """The partner_id of the application the sign-up became (again: the same)."""
        signup = await asyncio.to_thread(self.book.signup, signup_id)
        if signup is None:
            raise UnknownSignup(signup_id)
        if signup.partner_id is not None:
            return signup.partner_id
        data = dict(signup.data)
        partner_id = await self.applications.record({
            "name": data["name"], "email": data["email"], "company": data.get("company"),
            "website": data.get("website"), "traffic_sources": data.get("traffic_sources") or [],
            "country": data.get("country"), "terms_accepted_at": data["terms_accepted_at"],
            "email_verified_at": now.isoformat()})
        await asyncio.to_thread(self.book.confirmed, signup_id, partner_id)
        return partner_id
