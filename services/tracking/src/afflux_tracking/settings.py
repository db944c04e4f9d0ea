"""The tracking service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    service_name: ClassVar[str] = "tracking"

    port: int = Field(default=8002, validation_alias="AFFLUX_TRACKING_PORT")
    db_schema: str = Field(default="tracking", validation_alias="AFFLUX_TRACKING_SCHEMA")
    publish_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias="AFFLUX_TRACKING_PUBLISH_TIMEOUT",
        description="seconds a click or postback waits for the broker's ack before answering 503",
    )
