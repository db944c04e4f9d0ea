"""The console's pages, mounted on its app: where the services are, and every page group."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from afflux_console.adapters.names import Names
from afflux_console.adapters.operations import Operations
from afflux_console.adapters.service_apis import ServiceApis
from afflux_console.entrypoints import (
    pages_creatives,
    pages_home,
    pages_money,
    pages_offers,
    pages_ops,
    pages_partners,
    pages_review,
    pages_runs,
    pages_staff,
)
from afflux_console.entrypoints.ops_http import operations_routes
from afflux_console.entrypoints.pages import Console, add_error_pages, asset_routes
from afflux_console.settings import ConsoleSettings
from afflux_infra.health import service_urls
from afflux_plumbing.auth import Credentials

PAGE_GROUPS = (pages_home, pages_partners, pages_offers, pages_creatives, pages_review, pages_money,
               pages_runs, pages_ops, pages_staff)
READ_BY_PAGES = ("partners", "attribution", "payouts", "postbacks", "gateway", "tracking", "notifications")
"""The services the pages call (and whose health the operations page shows)."""


class PagesSettings(BaseSettings):
    """What the pages add to the console's settings: the other services' addresses
    (``AFFLUX_<SERVICE>_URL``, else 127.0.0.1 on ``AFFLUX_<SERVICE>_PORT`` or its default
    port) and whether cookies are ``Secure``."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    secure_cookies: bool = Field(default=False, validation_alias="AFFLUX_CONSOLE_SECURE_COOKIES")
    """Mark the session cookie ``Secure`` (set it when the console is served over HTTPS)."""

    def urls(self) -> dict[str, str]:
        found = service_urls()
        return {name: found[name] for name in READ_BY_PAGES if name in found}


def mount_pages(
    app: FastAPI,
    settings: ConsoleSettings,
    credentials: Credentials,
    staff_names: Callable[[], Mapping[str, str]],
) -> Console:
    """The operations API and the pages under ``/console`` (pages are left out of the
    OpenAPI document: they are not API)."""
    pages = PagesSettings()
    urls = pages.urls()
    apis = ServiceApis(urls, app)
    app.include_router(
        operations_routes(
            Operations(settings.database_url, settings.kafka_bootstrap_servers),
            list(urls),
            apis.ready,
            credentials,
        )
    )
    console = Console(apis, Names(apis, staff_names), credentials, pages.secure_cookies, settings.proxies)
    add_error_pages(app, console)
    app.include_router(asset_routes())
    for group in PAGE_GROUPS:
        app.include_router(group.routes(console), include_in_schema=False)
    pages_creatives.bound_uploads(app, console)
    app.router.add_event_handler("shutdown", apis.close)
    return console
