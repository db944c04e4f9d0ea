"""The console's configuration, from the environment (see ServiceSettings)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from afflux_plumbing.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    service_name: ClassVar[str] = "console"

    port: int = Field(default=8007, validation_alias="AFFLUX_CONSOLE_PORT")
    db_schema: str = Field(default="console", validation_alias="AFFLUX_CONSOLE_SCHEMA")
    session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 7,
        validation_alias="AFFLUX_CONSOLE_SESSION_HOURS",
        description="how long a staff session's bearer token is accepted after sign-in",
    )
    signin_failures: int = Field(
        default=5,
        ge=1,
        validation_alias="AFFLUX_CONSOLE_SIGNIN_FAILURES",
        description="failed sign-ins per email, and five times as many per address, within "
        "AFFLUX_CONSOLE_SIGNIN_WINDOW before sign-ins from there are refused (429)",
    )
    signin_window: float = Field(
        default=900.0,
        gt=0,
        validation_alias="AFFLUX_CONSOLE_SIGNIN_WINDOW",
        description="seconds over which failed sign-ins are counted",
    )
    publish_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias="AFFLUX_CONSOLE_PUBLISH_TIMEOUT",
        description="seconds a write waits for its events to be on the log before answering 202",
    )
