"""The tracking service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings
from afflux_tracking.application.intake import IntakeSettings


class TrackingSettings(ServiceSettings):
    service_name: ClassVar[str] = "tracking"

    port: int = Field(default=8002, validation_alias="AFFLUX_TRACKING_PORT")
    db_schema: str = Field(default="tracking", validation_alias="AFFLUX_TRACKING_SCHEMA")
    publish_timeout: float = Field(
        default=2.0,
        gt=0,
        validation_alias="AFFLUX_TRACKING_PUBLISH_TIMEOUT",
        description="seconds a click or postback waits for the broker's ack before answering 503",
    )
    catch_up_timeout: float = Field(
        default=3.0,
        gt=0,
        validation_alias="AFFLUX_TRACKING_CATCH_UP_TIMEOUT",
        description="seconds a refused or unknown link waits for the partners log to be caught up",
    )
    instances: int = Field(
        default=1,
        ge=1,
        validation_alias="AFFLUX_TRACKING_INSTANCES",
        description="tracking instances behind the load balancer: each admits its share "
                    "(ceil(limit / instances)) of every hard click cap (domain/click_caps.py)",
    )

    geoip_database: Path | None = Field(
        default=None,
        validation_alias="AFFLUX_TRACKING_GEOIP_DATABASE",
        description="a MaxMind GeoIP2/GeoLite2 Country or City database (.mmdb) to read visitors' "
                    "countries from, instead of the country file shipped with geoip2fast",
    )

    def intake(self) -> IntakeSettings:
        return IntakeSettings(self.publish_timeout, self.catch_up_timeout, self.instances)
