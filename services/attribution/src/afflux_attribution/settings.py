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
    catch_up_timeout: float = Field(
        default=2.0, gt=0, validation_alias="AFFLUX_ATTRIBUTION_CATCH_UP_TIMEOUT",
        description="seconds a fetch of tracking records waits for the partners view to reach the "
                    "partners log's end before its conversions are parked and retried",
    )
    partners_delay: float = Field(
        default=0.0, ge=0, validation_alias="AFFLUX_ATTRIBUTION_PARTNERS_DELAY",
        description="test hook: seconds the partners consumer waits before applying each partners "
                    "event (a slow partners view; never set in production)",
    )
