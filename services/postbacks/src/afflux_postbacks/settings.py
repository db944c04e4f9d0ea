"""The postbacks service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class PostbacksSettings(ServiceSettings):
    service_name: ClassVar[str] = "postbacks"

    port: int = Field(default=8006, validation_alias="AFFLUX_POSTBACKS_PORT")
    db_schema: str = Field(default="postbacks", validation_alias="AFFLUX_POSTBACKS_SCHEMA")
    allow_private: bool = Field(default=False, validation_alias="AFFLUX_POSTBACKS_ALLOW_PRIVATE")
    """Let postbacks reach private, loopback and link-local addresses (tests, on-premise)."""
    call_timeout: float = Field(default=10.0, validation_alias="AFFLUX_POSTBACKS_TIMEOUT")
    """Seconds one call may take, connect to last byte read."""
    per_host: int = Field(default=8, ge=1, validation_alias="AFFLUX_POSTBACKS_PER_HOST")
    """Calls in flight to one host at most: a slow partner holds only its own slots."""
    retry_first: float = Field(default=5.0, gt=0, validation_alias="AFFLUX_POSTBACKS_RETRY_FIRST")
    """Seconds before the first retry; each next wait doubles (with jitter)."""
    retry_cap: float = Field(default=3600.0, gt=0, validation_alias="AFFLUX_POSTBACKS_RETRY_CAP")
    give_up_after: float = Field(default=86400.0, gt=0, validation_alias="AFFLUX_POSTBACKS_GIVE_UP_AFTER")
    """Seconds after a delivery is owed when a still failing one is given up (Failed)."""
