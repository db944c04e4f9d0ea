"""The partners process: event store, outbox relay to ``afflux.partners.v1``, admin API."""

from __future__ import annotations

from afflux_partners.adapters.mail import NotificationsMailer
from afflux_partners.adapters.passwords import Argon2Passwords
from afflux_partners.adapters.store import PartnersStore
from afflux_partners.application.creatives import Creatives
from afflux_partners.application.onboarding import Links, Onboarding
from afflux_partners.application.payout_profiles import PayoutProfiles
from afflux_partners.application.published import to_envelope
from afflux_partners.entrypoints.creatives import mount_creatives
from afflux_partners.entrypoints.http import partners_app
from afflux_partners.entrypoints.onboarding import mount_onboarding
from afflux_partners.entrypoints.payout_profiles import mount_payout_profiles
from afflux_partners.settings import PartnersSettings
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.sealing import FernetSealer
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Publication, Wiring

WIRING = Wiring(PartnersSettings.service_name, subscriptions=(STAFF_VIEW,),
                publications=(Publication.of("relay", to_envelope.events),))
"""What partners runs on the log: its relay, and the staff view of its admin routes."""


def build(settings: PartnersSettings) -> Built:
    """Wire the service; it has no consumers: it is the source of partner facts."""
    store = open_store(PartnersStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings, WIRING)
    runtime.relay(store, to_envelope)
    app = partners_app(store, settings, runtime.ready, runtime.credentials())
    mailer = NotificationsMailer(settings.notifications_url, settings.service_token)
    links = Links(settings.portal_url, settings.invitation_hours, settings.reset_minutes)
    onboarding = Onboarding(store, store.open_people(), Argon2Passwords(), mailer, links)
    mount_onboarding(app, onboarding, store, settings, runtime.credentials())
    profiles = PayoutProfiles(store, FernetSealer(settings.profile_keys))
    mount_payout_profiles(app, profiles, settings, runtime.credentials())
    mount_creatives(app, Creatives(store, store.open_creatives()), settings, runtime.credentials())

    def close() -> None:
        mailer.close()
        store.close()

    return runtime, app, close


def main() -> None:
    run_service(PartnersSettings, build)
