"""Every reader of the partners log copes with ``CreativeSet``, the largest record on it (a
banner's image): the gateway keeps creatives and the console audits them; every other
consumer (tracking, attribution, payouts, postbacks, notifications, the staff views)
declares no handler for them, and its runs leave such a record out, so a creative never
stops a consumer nor goes to its dead letters."""

from __future__ import annotations

from typing import Any

from creative_samples import CREATIVES

from afflux_contracts import PARTNERS, CreativeKind, CreativeSet, Envelope, OfferStatus, OfferStatusChanged
from afflux_infra.asyncapi import wirings
from afflux_plumbing.positions import Position
from afflux_plumbing.runs import Handlers, Record, Run, record_of


def test_only_the_gateway_and_the_console_take_creatives_from_the_partners_log() -> None:
    readers = {(w.service, s.group): CreativeSet in s.events
               for w in wirings() for s in w.subscriptions if PARTNERS in s.topics}
    assert {service for service, _ in readers} >= {"tracking", "attribution", "payouts", "postbacks",
                                                   "notifications", "gateway", "console"}
    assert {reader for reader, takes in readers.items() if takes} == {("gateway", "partners"),
                                                                      ("console", "audit")}


def test_a_run_leaves_a_creative_out_of_handlers_that_do_not_take_it() -> None:
    paused = OfferStatusChanged(offer_id="o1", status=OfferStatus.PAUSED)
    records: list[Record[Any]] = [
        record_of(Envelope.wrap(event, producer="partners"), Position(PARTNERS.name, 0, offset))
        for offset, event in enumerate([*CREATIVES, paused])]
    taken: list[Run] = []
    handlers = Handlers({OfferStatusChanged: taken.append})

    for handler, segment in handlers.segments(records):
        handler(segment)

    assert [[record.payload for record in run] for run in taken] == [[paused]]
    assert {event.kind for event in CREATIVES if isinstance(event, CreativeSet)} == set(CreativeKind)
