"""The payouts store: the commission ledger and its statements, folded from the log.

It folds three topics (``FOLDED_TOPICS``), each with one run handler:
``afflux.attribution.v1`` (commissions, their reviews, rejections: ``ledger.py``),
``afflux.partners.v1`` (billing terms and tax profiles: ``partner_terms.py``) and its own
``afflux.payouts.v1`` (statements, their holds, payments, adjustments, which payouts decides in
``statements.py`` and which only take effect here, when they come back from the log:
``statement_fold.py``). A handler takes a run of records (a lone record is a run of
one), reads what the run needs, folds it in log order through the domain's rules and
returns its writes; the plumbing commits them with the run's position.

The fold is deterministic and order-independent across topics: balances are sums of
facts, nothing reads a clock, and a statement is judged from the records up to its
own log position. So it can run anywhere: a replay opens the store on a scratch
schema and applies the log's records with ``apply_run``.

Where things are kept is the adapters' business: this class names what it needs
(``LedgerTables``, ``TermsTables``, ``StatementBooks``, ``StatementDesk``,
``PayoutsReads``) and ``adapters/store.py`` binds them to PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    PAYOUTS,
    BalanceAdjusted,
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatusChanged,
    FxRateSet,
    ImpressionsPriced,
    InvoiceIssued,
    PartnerCreated,
    PartnerPayoutProfileSet,
    PartnerStatusChanged,
    PartnerUpdated,
    PaymentRunConfirmed,
    PaymentRunCreated,
    StatementConverted,
    StatementHeld,
    StatementIssued,
    StatementPaid,
    StatementPaymentFailed,
    StatementReleased,
)
from afflux_payouts.application.ledger import LedgerTables, fold_attribution
from afflux_payouts.application.partner_terms import TermsTables, fold_partners
from afflux_payouts.application.reads import PayoutsReads
from afflux_payouts.application.statement_fold import StatementBooks, fold_payouts
from afflux_plumbing.runs import Run, handles
from afflux_plumbing.store import Changes, TrackedApplication

if TYPE_CHECKING:
    from afflux_payouts.application.statements import StatementDesk

FOLDED_TOPICS = (ATTRIBUTION.name, PARTNERS.name, PAYOUTS.name)
"""Every topic the payouts projection is a fold of (each consumed in its own group)."""


class Payouts(TrackedApplication):
    """Commission ledger, statements and balances of every partner, by currency."""

    name = "Payouts"
    projection: ClassVar[tuple[str, ...]] = ()
    """The names of the view tables the fold writes (what a replay compares)."""

    ledger: LedgerTables
    terms: TermsTables
    books: StatementBooks
    desk: StatementDesk
    reads: PayoutsReads

    @handles(ConversionAttributed, ConversionStatusChanged, ConversionRejected, ClickPriced,
             ImpressionsPriced)
    def on_attribution(self, run: Run) -> Changes:
        return fold_attribution(self.ledger, run)

    @handles(PartnerCreated, PartnerUpdated, PartnerStatusChanged, PartnerPayoutProfileSet)
    def on_partners(self, run: Run) -> Changes:
        return fold_partners(self.terms, run)

    @handles(StatementIssued, StatementPaid, BalanceAdjusted, StatementHeld, StatementReleased,
             StatementPaymentFailed, PaymentRunCreated, PaymentRunConfirmed, InvoiceIssued,
             StatementConverted, FxRateSet)
    def on_payouts(self, run: Run) -> Changes:
        return fold_payouts(self.books, run)
