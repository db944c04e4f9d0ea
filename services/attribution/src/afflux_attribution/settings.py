"""The attribution service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class AttributionSettings(ServiceSettings):
    service_name: ClassVar[str] = "attribution"

    port: int = Field(default=8003, validation_alias="AFFLUX_ATTRIBUTION_PORT")
    db_schema: str = Field(default="attribution", validation_alias="AFFLUX_ATTRIBUTION_SCHEMA")
    publish_timeout: float = Field(
        default=5.0, gt=0, validation_alias="AFFLUX_ATTRIBUTION_PUBLISH_TIMEOUT",
        description="seconds a review waits for its event to be on the log before answering 202",
    )
