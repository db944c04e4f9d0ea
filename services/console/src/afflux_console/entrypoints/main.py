"""The console process: its event store with the outbox relay to ``afflux.staff.v1``,
the audit trail's consumer of every audited topic, the staff view, the API, and the
back office's pages."""

from __future__ import annotations

from datetime import timedelta

from afflux_console.adapters.store import ConsoleStore
from afflux_console.application.audit import AUDITED_TOPICS, Audit
from afflux_console.application.published import to_envelope
from afflux_console.entrypoints.http import console_app
from afflux_console.entrypoints.pages_app import mount_pages
from afflux_console.settings import ConsoleSettings
from afflux_contracts import EVENT_TYPES
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Publication, Subscription, Wiring

AUDIT = Subscription.of(EVENT_TYPES.values(), "audit", AUDITED_TOPICS)
"""The audit trail: every event of every audited topic (``Audit.handlers``)."""
WIRING = Wiring(ConsoleSettings.service_name, subscriptions=(AUDIT, STAFF_VIEW),
                publications=(Publication.of("relay", to_envelope.events),))
"""What the console runs on the log: the audit trail, the staff view, the relay of the
staff's facts."""


def build(settings: ConsoleSettings) -> Built:
    store = open_store(ConsoleStore, settings.database_url, settings.db_schema)
    store.session_lifetime = timedelta(hours=settings.session_hours)
    runtime = ServiceRuntime(settings, WIRING)
    runtime.relay(store, to_envelope)
    audit = Audit(store.views)
    runtime.consume(store, AUDIT, handlers=audit.handlers)
    app = console_app(store, audit, runtime.credentials(), settings, runtime.ready)
    mount_pages(app, settings, runtime.credentials(), lambda: {a.user_id: a.name for a in store.accounts()})
    return runtime, app, store.close


def main() -> None:
    run_service(ConsoleSettings, build)
