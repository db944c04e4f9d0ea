"""The payouts process: the ledger store, its attribution consumer and the admin API."""

from __future__ import annotations

from afflux_contracts import ATTRIBUTION
from afflux_payouts.application.payouts import Payouts
from afflux_payouts.entrypoints.http import create_app
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: PayoutsSettings) -> Built:
    """Wire the store, its consumer of ``afflux.attribution.v1`` and the HTTP app."""
    store = open_store(Payouts, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings)
    runtime.consume(store, [ATTRIBUTION.name], store.handle, group="attribution")
    app = create_app(store, runtime.ready, settings.admin_token)
    return runtime, app, store.close


def main() -> None:
    run_service(PayoutsSettings, build)
