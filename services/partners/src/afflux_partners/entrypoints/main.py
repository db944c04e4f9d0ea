"""The partners process: event store, outbox relay to ``afflux.partners.v1``, admin API."""

from __future__ import annotations

from afflux_partners.adapters.mail import NotificationsMailer
from afflux_partners.adapters.passwords import Argon2Passwords
from afflux_partners.adapters.store import PartnersStore
from afflux_partners.application.onboarding import Links, Onboarding
from afflux_partners.application.published import to_envelope
from afflux_partners.entrypoints.http import partners_app
from afflux_partners.entrypoints.onboarding import mount_onboarding
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.service import Built, ServiceRuntime, run_service


def build(settings: PartnersSettings) -> Built:
    """Wire the service; it has no consumers: it is the source of partner facts."""
    store = open_store(PartnersStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings)
    runtime.relay(store, to_envelope)
    app = partners_app(store, settings, runtime.ready, runtime.credentials())
    mailer = NotificationsMailer(settings.notifications_url, settings.service_token)
    links = Links(settings.portal_url, settings.invitation_hours, settings.reset_minutes)
    onboarding = Onboarding(store, store.open_people(), Argon2Passwords(), mailer, links)
    mount_onboarding(app, onboarding, store, settings, runtime.credentials())

    def close() -> None:
        mailer.close()
        store.close()

    return runtime, app, close


def main() -> None:
    run_service(PartnersSettings, build)
