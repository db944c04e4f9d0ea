"""The payouts service's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class PayoutsSettings(ServiceSettings):
    service_name: ClassVar[str] = "payouts"

    port: int = Field(default=8004, validation_alias="AFFLUX_PAYOUTS_PORT")
    db_schema: str = Field(default="payouts", validation_alias="AFFLUX_PAYOUTS_SCHEMA")
    close_interval: float = Field(default=60.0, validation_alias="AFFLUX_PAYOUTS_CLOSE_INTERVAL")
    """Seconds between rounds of closing the periods partners' billing frequencies ended
    (0: only admins close)."""
