"""What the log tells partners and staff: the run handlers that queue mail.

Each handler takes a run of records (``afflux_plumbing.runs``), reads what the whole
run needs in one query per kind (the partners it writes to, their opt-outs, the
offers and relationships it names), folds the records in log order through the
domain's rules, and returns its writes in batch form: the views it keeps and the
mails it queues, in the transaction that records the run's position. So a piece of
news applied is a mail queued (or skipped, saying why), whatever crashes after; and a
mail's id is a function of the news, its recipient and its kind, so applying the same
news again queues nothing new.

A partner or offer a record needs but the views do not know yet (it is on another
partition, a moment behind) parks the record (``RetryLater``) rather than losing its
mail.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from afflux_contracts import (
    OfferCreated,
    OfferStatusChanged,
    OfferUpdated,
    PartnerCreated,
    PartnerStatusChanged,
    PartnerUpdated,
    RelationshipSet,
    StatementIssued,
    StatementPaid,
)
from afflux_notifications.application.awaited import awaited, field
from afflux_notifications.domain.mailing import Mail, PartnerCard, event_source, to_partner, to_staff
from afflux_notifications.domain.news import application_verdict, paused_now, relationship_verdict
from afflux_plumbing.runs import Record, RetryLater, Run, handles
from afflux_plumbing.store import Changes, Write


@dataclass(frozen=True)
class OfferCard:
    offer_id: str
    name: str
    status: str


@dataclass(frozen=True)
class Standing:
    """A partner's relationship with an offer, as far as mail is concerned."""

    approved: bool
    application: bool


class NewsStore(Protocol):
    """The views the news reads and writes, and the mail it queues."""

    def partners(self, partner_ids: Collection[str]) -> dict[str, PartnerCard]: ...

    def set_partners(self, cards: Sequence[PartnerCard]) -> Sequence[Write]: ...

    def opted_out(self, partner_ids: Collection[str]) -> dict[str, frozenset[str]]: ...

    def offers(self, offer_ids: Collection[str]) -> dict[str, OfferCard]: ...

    def set_offers(self, cards: Sequence[OfferCard]) -> Sequence[Write]: ...

    def standings(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], Standing]: ...

    def set_standings(self, standings: Mapping[tuple[str, str], Standing]) -> Sequence[Write]: ...

    def approved_partners(self, offer_ids: Collection[str]) -> dict[str, list[str]]:
        """Per offer, the partners with an approved relationship on it."""
        ...

    def queue(self, mails: Sequence[Mail]) -> Sequence[Write]:
        """Mails from now on; one queued before (the same id) is left as it is."""
        ...


class News:
    """The run handlers of the partners, payouts (and, once their events exist,
    attribution and postbacks) logs."""

    def __init__(self, store: NewsStore, staff: Sequence[str]) -> None:
        self.store = store
        self.staff = tuple(staff)

    @handles(PartnerCreated, PartnerUpdated, PartnerStatusChanged)
    def on_partners(self, run: Run) -> Changes:
        """The recipients view; a partner who applied hears its verdict."""
        known = self.store.partners({r.payload.partner_id for r in run})
        changed: dict[str, PartnerCard] = {}
        mails: list[Mail] = []
        for record in run:
            before = known.get(record.payload.partner_id)
            after = _card(record.payload, before)
            if after is None:
                continue  # a status change of a partner never created: nothing to write to
            verdict = application_verdict(before.status if before else None, after.status)
            if verdict is not None:
                mails += to_partner(verdict, after, (), {}, **_about(record))
            known[after.partner_id] = changed[after.partner_id] = after
        return Changes(writes=[*self.store.set_partners(list(changed.values())), *self.store.queue(mails)])

    @handles(OfferCreated, OfferUpdated, OfferStatusChanged)
    def on_offers(self, run: Run) -> Changes:
        """The offers view; partners approved on an offer hear that it was paused."""
        known = self.store.offers({r.payload.offer_id for r in run})
        changed: dict[str, OfferCard] = {}
        paused: list[tuple[Record[Any], OfferCard]] = []
        for record in run:
            payload, before = record.payload, known.get(record.payload.offer_id)
            name = payload.name if not isinstance(payload, OfferStatusChanged) else (
                before.name if before else payload.offer_id)
            after = OfferCard(payload.offer_id, name, payload.status.value)
            if paused_now(before.status if before else None, after.status):
                paused.append((record, after))
            known[after.offer_id] = changed[after.offer_id] = after
        writes = [*self.store.set_offers(list(changed.values()))]
        if paused:
            writes += self.store.queue(self._paused_mails(paused))
        return Changes(writes=writes)

    def _paused_mails(self, paused: Sequence[tuple[Record[Any], OfferCard]]) -> list[Mail]:
        approved = self.store.approved_partners({offer.offer_id for _, offer in paused})
        partner_ids = {partner_id for ids in approved.values() for partner_id in ids}
        partners, opted_out = self.store.partners(partner_ids), self.store.opted_out(partner_ids)
        return [mail for record, offer in paused for partner_id in approved.get(offer.offer_id, ())
                if partner_id in partners
                for mail in to_partner("offer_paused", partners[partner_id], opted_out.get(partner_id, ()),
                                       {"offer_id": offer.offer_id, "offer_name": offer.name},
                                       **_about(record))]

    @handles(RelationshipSet)
    def on_relationships(self, run: Run) -> Changes:
        """A partner that applied for an offer hears the verdict; staff hear of the application."""
        pairs = {(r.payload.offer_id, r.payload.partner_id) for r in run}
        known = self.store.standings(pairs)
        offers = self.store.offers({offer_id for offer_id, _ in pairs})
        partners = self.store.partners({partner_id for _, partner_id in pairs})
        changed: dict[tuple[str, str], Standing] = {}
        mails: list[Mail] = []
        for record in run:
            payload = record.payload
            pair = (payload.offer_id, payload.partner_id)
            before = known.get(pair)
            verdict = relationship_verdict(bool(before and before.application), payload.approved,
                                           payload.application)
            applied = payload.application and not (before and before.application)
            if verdict is not None or applied:
                offer = _needed(offers, payload.offer_id, "offer")
                partner = _needed(partners, payload.partner_id, "partner")
                about = {"offer_id": offer.offer_id, "offer_name": offer.name}
                if verdict is not None:
                    mails += to_partner(verdict, partner, (), about, **_about(record))
                if applied:
                    mails += to_staff("staff_offer_application", self.staff,
                                      {**about, "partner_id": partner.partner_id,
                                       "partner_name": partner.name},
                                      **_about(record))
            known[pair] = changed[pair] = Standing(payload.approved, payload.application)
        return Changes(writes=[*self.store.set_standings(changed), *self.store.queue(mails)])

    @handles(StatementIssued, StatementPaid)
    def on_statements(self, run: Run) -> Changes:
        """A partner hears that its statement was issued, and that it was paid."""
        partners = self.store.partners({r.payload.partner_id for r in run})
        mails: list[Mail] = []
        for record in run:
            payload = record.payload
            partner = _needed(partners, payload.partner_id, "partner")
            if isinstance(payload, StatementIssued):
                mails += to_partner("statement_issued", partner, (), {
                    "statement_id": payload.statement_id, "currency": payload.currency,
                    "total": format(payload.total, "f"), "status": payload.status.value,
                    "period_end": payload.period_end.isoformat()}, **_about(record))
            else:
                mails += to_partner("statement_paid", partner, (), {
                    "statement_id": payload.statement_id, "currency": payload.currency,
                    "amount": format(payload.amount, "f"), "paid_at": payload.paid_at.isoformat(),
                    "reference": payload.reference}, **_about(record))
        return Changes(writes=self.store.queue(mails))

    # -- events their producers have not published yet (application/awaited.py) -------------

    @handles(*awaited("PartnerApplied"))
    def on_partner_applications(self, run: Run) -> Changes:
        """Staff hear of a partner's sign-up (issue 21)."""
        return Changes(writes=self.store.queue([mail for record in run for mail in to_staff(
            "staff_partner_application", self.staff, _fields(record.payload, partner_id="partner_id",
                                                             partner_name="name", email="email",
                                                             company="company"), **_about(record))]))

    @handles(*awaited("CapThresholdReached"))
    def on_caps(self, run: Run) -> Changes:
        """Staff hear that a cap reached 80 % or 100 %."""
        offers = self.store.offers({field(r.payload, "offer_id", "") for r in run})
        mails: list[Mail] = []
        for record in run:
            data = _fields(record.payload, offer_id="offer_id", partner_id="partner_id", metric="metric",
                           period="period", limit="limit", value="value", percent="percent")
            offer = offers.get(str(data.get("offer_id")))
            mails += to_staff("staff_cap_reached", self.staff,
                              {**data, "offer_name": offer.name if offer else data.get("offer_id")},
                              **_about(record))
        return Changes(writes=self.store.queue(mails))

    @handles(*awaited("PostbackHostPaused"))
    def on_paused_hosts(self, run: Run) -> Changes:
        """The partners whose postbacks go to a host that was paused hear of it (unless they
        opted out), and staff do."""
        ids = {partner_id for r in run for partner_id in field(r.payload, "partner_ids", ()) or ()}
        partners, opted_out = self.store.partners(ids), self.store.opted_out(ids)
        mails: list[Mail] = []
        for record in run:
            data = _fields(record.payload, host="host", reason="reason")
            for partner_id in field(record.payload, "partner_ids", ()) or ():
                if partner_id in partners:
                    mails += to_partner("postback_host_paused", partners[partner_id],
                                        opted_out.get(partner_id, ()), data, **_about(record))
            partner_ids = ", ".join(field(record.payload, "partner_ids", ()) or ())
            mails += to_staff("staff_postback_host_paused", self.staff, {**data, "partner_ids": partner_ids},
                              **_about(record))
        return Changes(writes=self.store.queue(mails))

    @handles(*awaited("PayoutDriftDetected"))
    def on_drift(self, run: Run) -> Changes:
        """Staff hear that payouts' shadow fold differs from its ledger."""
        return Changes(writes=self.store.queue([mail for record in run for mail in to_staff(
            "staff_payout_drift", self.staff,
            {"summary": field(record.payload, "summary", "payout drift detected"),
             "partner_ids": ", ".join(field(record.payload, "partner_ids", ()) or ())}, **_about(record))]))


def _card(payload: Any, before: PartnerCard | None) -> PartnerCard | None:
    if isinstance(payload, PartnerStatusChanged):
        return replace(before, status=payload.status.value) if before is not None else None
    return PartnerCard(payload.partner_id, payload.name, payload.email,
                       tuple(contact.email for contact in payload.contacts), payload.status.value)


def _about(record: Record[Any]) -> dict[str, Any]:
    """What every mail a record makes says of it: its source and correlation."""
    return {"source": event_source(record.event_id), "source_event_id": record.event_id,
            "correlation_id": record.envelope.correlation_id}


def _needed(known: Mapping[str, Any], key: str, what: str) -> Any:
    found = known.get(key)
    if found is None:
        raise RetryLater(f"{what} {key} is not in the views yet")
    return found


def _fields(payload: Any, **names: str) -> dict[str, Any]:
    """The data of an awaited event's mail: ``{data name: the payload's field}``, as text."""
    return {name: _text(field(payload, attribute)) for name, attribute in names.items()
            if field(payload, attribute) is not None}


def _text(value: Any) -> Any:
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple | list):
        return ", ".join(str(_text(item)) for item in value)
    return getattr(value, "value", None) or str(value)

