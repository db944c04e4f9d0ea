"""The payouts process: the ledger store, its consumers of the attribution, partners and
payouts logs, the relay that publishes its statements, the close scheduler and the admin API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sized

from afflux_contracts import ATTRIBUTION, PARTNERS, PAYOUTS
from afflux_payouts.adapters.payment_files import Debtor, file_maker
from afflux_payouts.adapters.store import PayoutsStore
from afflux_payouts.application.invoices import Invoices
from afflux_payouts.application.payment_runs import PaymentRuns
from afflux_payouts.application.published import to_envelope
from afflux_payouts.application.statements import NotFoldedYet, Statements
from afflux_payouts.domain.invoices import Issuer
from afflux_payouts.entrypoints.drift import watch_drift
from afflux_payouts.entrypoints.http import create_app
from afflux_payouts.entrypoints.invoices_http import add_invoice_routes
from afflux_payouts.entrypoints.payment_runs_http import add_payment_run_routes
from afflux_payouts.settings import PayoutsSettings
from afflux_plumbing.background import while_served
from afflux_plumbing.eventstore import open_store
from afflux_plumbing.http import admin_auth
from afflux_plumbing.outage import OUTAGES
from afflux_plumbing.sealing import FernetSealer
from afflux_plumbing.service import Built, ServiceRuntime, run_service
from afflux_plumbing.staff_credentials import STAFF_VIEW
from afflux_plumbing.wiring import Publication, Subscription, Wiring

log = logging.getLogger(__name__)

FOLDS = tuple(Subscription.of(PayoutsStore, group, [topic])  # the store's @handles methods
              for topic, group in ((ATTRIBUTION, "attribution"), (PARTNERS, "partners"),
                                   (PAYOUTS, "payouts")))
"""One consumer per folded topic, each in its own group, so a record parked on one never
holds up the others."""
WIRING = Wiring(PayoutsSettings.service_name, subscriptions=(*FOLDS, STAFF_VIEW),
                publications=(Publication.of("relay", to_envelope.events),))
"""What payouts runs on the log: its folds, the staff view, the relay of its statements."""


def build(settings: PayoutsSettings) -> Built:
    """Wire the store, one consumer per folded topic (each in its own group, so a record
    parked on one never holds up the others), the relay, the scheduler and the HTTP app."""
    store = open_store(PayoutsStore, settings.database_url, settings.db_schema)
    runtime = ServiceRuntime(settings, WIRING)
    for fold in FOLDS:
        runtime.consume(store, fold)
    runtime.relay(store, to_envelope)
    statements = Statements(store, tax_gate=settings.tax_gate)
    app = create_app(store, runtime.ready, runtime.credentials(), statements)
    sealer = FernetSealer(settings.profile_keys)
    admin = [admin_auth(runtime.credentials())]
    runs = PaymentRuns(statements, store.runs, sealer, file_maker(debtor_of(settings)))
    add_payment_run_routes(app, runs, admin)
    invoices = Invoices(statements, store.invoices, sealer, issuer_of(settings))
    add_invoice_routes(app, invoices, admin)
    watch_drift(app, settings, build)  # replay: a shadow fold checks the live projection
    if settings.close_interval > 0:
        # Close every billed partner's periods as its frequency ends them.
        while_served(app, lambda: on_schedule(settings.close_interval, statements.close_due,
                                              "scheduled statement close"), "payouts-close")
    # Release the held statements whose partner's profile became complete.
    while_served(app, lambda: on_schedule(settings.hold_interval, statements.release_ready,
                                          "releasing held statements"), "payouts-holds")
    # Invoice what became payable (its partner's profile complete).
    while_served(app, lambda: on_schedule(settings.hold_interval, invoices.issue_ready, "invoicing"),
                 "payouts-invoices")
    return runtime, app, store.close


POSTPONED: tuple[type[Exception], ...] = (NotFoldedYet, *OUTAGES)
"""What a scheduled round waits out: a fold that lags, an outage."""


async def on_schedule(interval: float, work: Callable[[], Sized], what: str) -> None:
    """Do ``work`` (in a thread) every ``interval`` seconds; a fold that lags or an outage
    is retried at the next round."""
    while True:
        await asyncio.sleep(interval)
        try:
            done = await asyncio.to_thread(work)
        except POSTPONED as error:
            log.warning("%s postponed: %s", what, error)
            continue
        if len(done):
            log.info("%s: %d statements", what, len(done))


def debtor_of(settings: PayoutsSettings) -> Debtor | None:
    """The network's account SEPA files debit, when all of it is set."""
    if settings.sepa_name and settings.sepa_iban and settings.sepa_bic:
        return Debtor(settings.sepa_name, settings.sepa_iban, settings.sepa_bic)
    return None


def issuer_of(settings: PayoutsSettings) -> Issuer | None:
    """The network as it issues self-billed invoices, when it is set (and the profile keys,
    which open the partners' details and seal the invoices)."""
    name, country, vat_id = (settings.invoice_issuer_name, settings.invoice_issuer_country,
                             settings.invoice_issuer_vat_id)
    if not (name and country and vat_id and settings.profile_keys):
        return None
    return Issuer(settings.invoice_entity, name, settings.invoice_issuer_address, country.upper(), vat_id,
                  settings.invoice_vat_rate)


def main() -> None:
    run_service(PayoutsSettings, build)
