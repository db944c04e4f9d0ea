"""The notifications service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"

    port: int = Field(default=8008, validation_alias="AFFLUX_NOTIFICATIONS_PORT")
    db_schema: str = Field(default="notifications", validation_alias="AFFLUX_NOTIFICATIONS_SCHEMA")
    smtp_url: str = Field(default="", validation_alias="AFFLUX_SMTP_URL", repr=False)
    """Where mail goes: ``smtp://user:password@host:port?starttls=true`` or ``smtps://...``;
    unset: to the embedded mail catcher (``GET /v1/mail``)."""
    smtp_ca_file: str | None = Field(default=None, validation_alias="AFFLUX_SMTP_CA_FILE")
    """A CA bundle that signs the SMTP server's certificate (a private CA)."""
    smtp_timeout: float = Field(default=30.0, gt=0, validation_alias="AFFLUX_SMTP_TIMEOUT")
    """Seconds each step of an SMTP conversation may take."""
    mail_from: str = Field(default="Afflux <no-reply@afflux.localhost>", validation_alias="AFFLUX_MAIL_FROM")
    catcher_port: int = Field(default=0, ge=0, le=65535, validation_alias="AFFLUX_MAIL_CATCHER_PORT")
    """The embedded catcher's port on 127.0.0.1 (0: any free port); only without a URL."""
    staff_emails: str = Field(default="", validation_alias="AFFLUX_STAFF_EMAILS")
    """Staff addresses, comma-separated (until staff users exist): dead letters, applications."""
    program_name: str = Field(default="Afflux", validation_alias="AFFLUX_PROGRAM_NAME")
    portal_url: str = Field(default="http://127.0.0.1:8005/portal", validation_alias="AFFLUX_PORTAL_URL")
    retry_first: float = Field(default=5.0, gt=0, validation_alias="AFFLUX_NOTIFICATIONS_RETRY_FIRST")
    retry_cap: float = Field(default=1800.0, gt=0, validation_alias="AFFLUX_NOTIFICATIONS_RETRY_CAP")
    give_up_after: float = Field(default=86400.0, gt=0, validation_alias="AFFLUX_NOTIFICATIONS_GIVE_UP_AFTER")
    """Seconds after a mail was queued when a still failing one is given up."""
    concurrency: int = Field(default=4, ge=1, le=64, validation_alias="AFFLUX_NOTIFICATIONS_CONCURRENCY")
    """SMTP conversations at a time."""
    digest_every: float = Field(default=3600.0, gt=0, validation_alias="AFFLUX_NOTIFICATIONS_DIGEST_EVERY")
    """Seconds between two dead-letter digests of one topic."""

    @property
    def catching(self) -> bool:
        """No SMTP server named: mail goes to the embedded catcher."""
        return not self.smtp_url

    @property
    def staff(self) -> list[str]:
        return [part for part in self.staff_emails.replace(",", " ").split() if part]

    @property
    def mail_domain(self) -> str:
        """The domain of ``Message-ID``s: the sender's."""
        address = self.mail_from.rsplit("<", 1)[-1].rstrip("> ")
        return address.rsplit("@", 1)[-1] or "afflux.localhost"
