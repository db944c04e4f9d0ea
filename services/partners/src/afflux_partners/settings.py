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
