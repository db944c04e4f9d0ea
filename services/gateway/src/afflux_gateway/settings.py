"""The gateway's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_gateway.entrypoints.session import SessionKeys
from afflux_plumbing.settings import ServiceSettings

MIN_SECRET_CHARS = 32


class MissingSecret(Exception):
    """A secret the gateway cannot run without (outside ``make run``, which generates them)."""


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    port: int = Field(default=8005, validation_alias="AFFLUX_GATEWAY_PORT")
    db_schema: str = Field(default="gateway", validation_alias="AFFLUX_GATEWAY_SCHEMA")
    partners_url: str = Field(default="", validation_alias="AFFLUX_PARTNERS_URL")
    """Where applications for offers go (the partners API). Default: the partners service
    on this host, at ``AFFLUX_PARTNERS_PORT`` (8001 unless set)."""
    partners_port: int = Field(default=8001, validation_alias="AFFLUX_PARTNERS_PORT")
    payouts_url: str = Field(default="", validation_alias="AFFLUX_PAYOUTS_URL")
    """Where partners' balances are asked (the payouts API). Default: this host, at
    ``AFFLUX_PAYOUTS_PORT`` (8004 unless set)."""
    payouts_port: int = Field(default=8004, validation_alias="AFFLUX_PAYOUTS_PORT")
    service_token: str = Field(default="", validation_alias="AFFLUX_GATEWAY_SERVICE_TOKEN")
    """The gateway's own credential towards partners and payouts; they accept it through
    their ``AFFLUX_SERVICE_TOKENS`` for ``partners.apply`` and ``payouts.balance.read`` only."""
    tracking_url: str = Field(default="http://127.0.0.1:8002", validation_alias="AFFLUX_TRACKING_URL")
    """The public base of tracking links."""
    session_secret: str = Field(default="", validation_alias="AFFLUX_GATEWAY_SESSION_SECRET")
    """Signs portal session cookies; every instance needs the same. Required (the gateway
    refuses to start without it; ``make run`` generates one)."""
    previous_session_secret: str = Field(
        default="", validation_alias="AFFLUX_GATEWAY_SESSION_SECRET_PREVIOUS"
    )
    """During a rotation: the secret before ``session_secret``, still accepted for the
    sessions and forms it signed (drop it once they expired: 8 hours)."""
    failure_limit: int = Field(default=10, ge=1, validation_alias="AFFLUX_GATEWAY_FAILURE_LIMIT")
    """Failed key checks from one source within ``failure_period`` before its failures get 429."""
    failure_period: float = Field(default=60.0, gt=0, validation_alias="AFFLUX_GATEWAY_FAILURE_PERIOD")
    secure_cookies: bool = Field(default=False, validation_alias="AFFLUX_GATEWAY_SECURE_COOKIES")
    """Mark the session cookie ``Secure`` (set it when the portal is served over HTTPS)."""

    notifications_url: str = Field(default="http://127.0.0.1:8008",
                                   validation_alias="AFFLUX_NOTIFICATIONS_URL")
    """Where the sign-up's verification mail is asked for (``POST /v1/messages``)."""
    portal_url: str = Field(default="", validation_alias="AFFLUX_PORTAL_URL")
    """The portal's public address (``https://partners.example/portal``), for the links in
    mail (default: this host and port). Partners and notifications read the same setting."""
    signup_address_limit: int = Field(default=5, ge=1, validation_alias="AFFLUX_GATEWAY_SIGNUP_ADDRESS_LIMIT")
    """Sign-ups from one client address within ``signup_period`` before 429."""
    signup_email_limit: int = Field(default=3, ge=1, validation_alias="AFFLUX_GATEWAY_SIGNUP_EMAIL_LIMIT")
    """Sign-ups for one email address within ``signup_period`` before 429 (and as many mails)."""
    signup_period: float = Field(default=3600.0, gt=0, validation_alias="AFFLUX_GATEWAY_SIGNUP_PERIOD")
    verify_hours: int = Field(default=24, ge=1, le=24, validation_alias="AFFLUX_GATEWAY_VERIFY_HOURS")
    """How long a verification link works."""

    @property
    def public_url(self) -> str:
        return (self.portal_url or f"http://127.0.0.1:{self.port}/portal").rstrip("/")

    @property
    def site_url(self) -> str:
        """The gateway's public address (``public_url`` without its ``/portal``): banners'
        images are served under it (``/creatives/...``) for partners' pages to embed."""
        return self.public_url.removesuffix("/portal")

    @property
    def partners_api(self) -> str:
        return self.partners_url or f"http://127.0.0.1:{self.partners_port}"

    @property
    def payouts_api(self) -> str:
        return self.payouts_url or f"http://127.0.0.1:{self.payouts_port}"

    def session_keys(self) -> SessionKeys:
        """The portal's signing keys; ``MissingSecret`` when none (or a short one) is set."""
        for name, secret in (
            ("AFFLUX_GATEWAY_SESSION_SECRET", self.session_secret),
            ("AFFLUX_GATEWAY_SESSION_SECRET_PREVIOUS", self.previous_session_secret),
        ):
            if secret and len(secret) < MIN_SECRET_CHARS:
                raise MissingSecret(f"{name} is shorter than {MIN_SECRET_CHARS} characters")
        if not self.session_secret:
            raise MissingSecret(
                "AFFLUX_GATEWAY_SESSION_SECRET is not set: the portal signs its session cookies with it "
                f"(at least {MIN_SECRET_CHARS} random characters, the same on every instance; `make run` "
                "generates one)"
            )
        return SessionKeys.of(self.session_secret, self.previous_session_secret)

    def own_token(self) -> str:
        """The gateway's service token; ``MissingSecret`` when not set."""
        if not self.service_token:
            raise MissingSecret(
                "AFFLUX_GATEWAY_SERVICE_TOKEN is not set: the gateway calls partners (applications) and "
                "payouts (balances) with it, and they must list its SHA-256 in AFFLUX_SERVICE_TOKENS with "
                "the scopes partners.apply and payouts.balance.read (`make run` sets both)"
            )
        return self.service_token
