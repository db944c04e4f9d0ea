"""The payment run use cases: select payable statements into a run, make its file, confirm it.

A run is decided like a close: one at a time (the close's advisory lock), after the fold
has caught up with the runs recorded before, so a statement is in at most one open run;
its payments are recorded on the ``PaymentRun`` aggregate and published. The file is
made on demand from the run's payments and each payee's details, which payouts keeps
sealed (from the partners log) and opens with the profile keys only to write the file.
Confirming a run records, in one transaction, the run's confirmation and each statement's
payment (``StatementPaid`` with the run's id) or failure; a second confirmation answers
the first one's outcome and records nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from afflux_contracts import utc_now
from afflux_payouts.application.payouts import Payouts
from afflux_payouts.application.statements import NotFoldedYet, Statements
from afflux_payouts.domain.payment_runs import Candidate, PaymentRun, RunRefused, chosen
from afflux_payouts.domain.records import NotPayable


class RunDesk(Protocol):
    def candidates(self, statement_ids: Sequence[str] | None, due_by: datetime | None) -> list[Candidate]: ...

    def sealed(self, partner_ids: Sequence[str]) -> dict[str, str]: ...

    def unfolded(self) -> int: ...

    def recent(self, limit: int) -> list[dict[str, Any]]: ...


class Opener(Protocol):
    def unseal(self, sealed: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PaymentFile:
    name: str
    media_type: str
    content: bytes


class FileMaker(Protocol):
    """Makes the file of a run's ``method`` (an adapter: SEPA XML, PayPal or wire CSV)."""

    def __call__(self, method: str, run_id: str, payments: Sequence[Mapping[str, Any]],
                 payees: Mapping[str, Mapping[str, Any]], on: datetime) -> PaymentFile: ...


class UnknownRun(LookupError):
    pass


@dataclass(frozen=True)
class Outcome:
    """What a confirmation did: the statements paid, and those whose payment failed (why)."""

    run: PaymentRun
    paid: list[str]
    failed: dict[str, str]


class PaymentRuns:
    def __init__(self, statements: Statements, desk: RunDesk, opener: Opener, files: FileMaker) -> None:
        self.statements = statements
        self.store: Payouts = statements.store
        self.desk, self.opener, self.files = desk, opener, files

    def create(self, method: str, statement_ids: Sequence[str] | None, due_by: datetime | None) -> PaymentRun:
        """A run of ``method`` paying the statements named, or every one due by ``due_by``
        (``RunRefused`` names what cannot be paid)."""
        with self.statements.exclusive():
            if not self.wait_runs_folded():
                raise NotFoldedYet("payouts has not folded the payment runs it recorded before yet: "
                                   "retry shortly")
            payments = chosen(method, self.desk.candidates(statement_ids, due_by), statement_ids)
            run = PaymentRun.select("run_" + secrets.token_hex(12), method, payments, due_by, utc_now())
            self.store.save(run)
        return run

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest runs (as folded): what finance lists to open one."""
        return self.desk.recent(limit)

    def run(self, payment_run_id: str) -> PaymentRun:
        try:
            found: PaymentRun = self.store.repository.get(PaymentRun.create_id(payment_run_id))
        except AggregateNotFoundError as error:
            raise UnknownRun(f"no payment run {payment_run_id}") from error
        return found

    def file(self, payment_run_id: str) -> PaymentFile:
        run = self.run(payment_run_id)
        partners = sorted({payment["partner_id"] for payment in run.payments})
        sealed = self.desk.sealed(partners)
        payees = {partner: self.opener.unseal(sealed[partner]) for partner in partners if partner in sealed}
        missing = [partner for partner in partners if partner not in payees]
        if missing:
            raise RunRefused("no_payment_details", f"no payment details for partners {', '.join(missing)}")
        return self.files(run.method, run.payment_run_id, run.payments, payees, run.created_at)

    def confirm(self, payment_run_id: str, failed: Mapping[str, str]) -> Outcome:
        """Pay every statement of the run but the ``failed`` ones (statement_id -> reason)."""
        run = self.run(payment_run_id)
        if run.confirmed:
            return Outcome(run, list(run.paid or []), {f["statement_id"]: f["reason"] for f in run.failed})
        failures = run.failures(failed)
        statements = [self.statements.statement(p["statement_id"]) for p in run.payments]
        paid = []
        for statement in statements:
            statement_id = statement.statement["statement_id"]
            if statement_id in failures:
                statement.payment_failed(payment_run_id, failures[statement_id])
                continue
            try:
                statement.pay(payment_run_id, payment_run_id)
            except NotPayable as refused:
                failures[statement_id] = str(refused)  # paid or held meanwhile: not paid by this run
                continue
            paid.append(statement_id)
        run.confirm(paid, failures, utc_now())
        try:
            self.store.save(run, *statements)
        except IntegrityError:
            return self.confirm(payment_run_id, failed)  # confirmed concurrently: answer that one
        self.statements.wait_folded()
        self.wait_runs_folded()
        return Outcome(run, paid, failures)

    def wait_runs_folded(self, timeout: float = 10.0) -> bool:
        """Wait until the fold shows every run and confirmation recorded so far."""
        deadline = time.monotonic() + timeout
        while self.desk.unfolded() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
