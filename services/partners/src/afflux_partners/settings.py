"""The partners service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class PartnersSettings(ServiceSettings):
    service_name: ClassVar[str] = "partners"

    port: int = Field(default=8001, validation_alias="AFFLUX_PARTNERS_PORT")
    db_schema: str = Field(default="partners", validation_alias="AFFLUX_PARTNERS_SCHEMA")
    tracking_url: str = Field(default="http://127.0.0.1:8002", validation_alias="AFFLUX_TRACKING_URL")
    """The public base URL of the tracking service: tracking links point there."""
    publish_timeout: float = Field(
        default=5.0, gt=0, validation_alias="AFFLUX_PARTNERS_PUBLISH_TIMEOUT",
        description="seconds a write waits for its events to be on the log before answering 202",
    )
    notifications_url: str = Field(default="http://127.0.0.1:8008",
                                   validation_alias="AFFLUX_NOTIFICATIONS_URL")
    """Where mail that carries a link is asked for (``POST /v1/messages``): invitations
    and password resets."""
    service_token: str = Field(default="", validation_alias="AFFLUX_PARTNERS_SERVICE_TOKEN")
    """The partners service's own credential towards notifications (scope
    ``notifications.send`` there). Without it, mail stays owed (and is logged)."""
    portal_url: str = Field(default="http://127.0.0.1:8005/portal", validation_alias="AFFLUX_PORTAL_URL")
    """The portal's public address (the gateway's ``/portal``): links in invitations and resets."""
    invitation_hours: int = Field(default=72, ge=1, le=720,
                                  validation_alias="AFFLUX_PARTNERS_INVITATION_HOURS")
    reset_minutes: int = Field(default=60, ge=5, le=1440, validation_alias="AFFLUX_PARTNERS_RESET_MINUTES")
    owed_mail_interval: float = Field(default=5.0, gt=0,
                                      validation_alias="AFFLUX_PARTNERS_OWED_MAIL_INTERVAL")
    """Seconds between two looks for mail that notifications did not take yet."""
    profile_keys: str = Field(default="", validation_alias="AFFLUX_PROFILE_KEYS", repr=False)
    """Fernet keys sealing partners' tax and payment details (``adapters/sealing.py``): the
    first seals, every one opens. Without any, the profile routes answer 503."""
