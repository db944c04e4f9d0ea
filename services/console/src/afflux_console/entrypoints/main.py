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
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: ConsoleSettings) -> Built:
    store = open_store(ConsoleStore, settings.database_url, settings.db_schema)
    store.session_lifetime = timedelta(hours=settings.session_hours)
    runtime = ServiceRuntime(settings)
    runtime.relay(store, to_envelope)
    audit = Audit(store.views)
    runtime.consume(store, [topic.name for topic in AUDITED_TOPICS], group="audit", handlers=audit.handlers)
    app = console_app(store, audit, runtime.credentials(), settings, runtime.ready)
    mount_pages(app, settings, runtime.credentials(), lambda: {a.user_id: a.name for a in store.accounts()})
    return runtime, app, store.close


def main() -> None:
    run_service(ConsoleSettings, build)
