"""The gateway's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    port: int = Field(default=8005, validation_alias="AFFLUX_GATEWAY_PORT")
    db_schema: str = Field(default="gateway", validation_alias="AFFLUX_GATEWAY_SCHEMA")
    partners_url: str = Field(default="", validation_alias="AFFLUX_PARTNERS_URL")
    """Where applications for offers go (the partners API). Default: the partners service
    on this host, at ``AFFLUX_PARTNERS_PORT`` (8001 unless set)."""
    partners_port: int = Field(default=8001, validation_alias="AFFLUX_PARTNERS_PORT")
    tracking_url: str = Field(default="http://127.0.0.1:8002", validation_alias="AFFLUX_TRACKING_URL")
    """The public base of tracking links."""
    session_secret: str = Field(default="", validation_alias="AFFLUX_GATEWAY_SESSION_SECRET")
    """Signs portal session cookies; every instance needs the same. Default: derived from
    the admin token (so instances of one deployment agree without another secret)."""
    failure_limit: int = Field(default=10, ge=1, validation_alias="AFFLUX_GATEWAY_FAILURE_LIMIT")
    """Failed key checks from one address within ``failure_period`` before it gets 429."""
    failure_period: float = Field(default=60.0, gt=0, validation_alias="AFFLUX_GATEWAY_FAILURE_PERIOD")
    secure_cookies: bool = Field(default=False, validation_alias="AFFLUX_GATEWAY_SECURE_COOKIES")
    """Mark the session cookie ``Secure`` (set it when the portal is served over HTTPS)."""

    @property
    def partners_api(self) -> str:
        return self.partners_url or f"http://127.0.0.1:{self.partners_port}"

    @property
    def session_key(self) -> bytes:
        seed = self.session_secret or f"afflux-gateway-session:{self.admin_token}"
        return hashlib.sha256(seed.encode()).digest()
