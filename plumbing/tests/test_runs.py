"""Runs: consecutive records of a partition committed as one transaction, against a real
PostgreSQL (the store) and a real broker (the consumer)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tally import Roster, partner_created, status_changed
from test_consumer import consumed, consumer_for, running

from afflux_contracts import (
    Envelope,
    OfferStatus,
    OfferStatusChanged,
    PartnerCreated,
    PartnerStatusChanged,
    encode,
)
from afflux_infra.testing import eventually
from afflux_plumbing.positions import Position
from afflux_plumbing.publish import Publisher
from afflux_plumbing.runs import Handlers, Record, RetryLater, Unprocessable, handles, record_of
from afflux_plumbing.store import Changes

TOPIC = "test.runs"


def run_of(*envelopes: Envelope[Any], first_offset: int = 0) -> list[Record[Any]]:
    return [record_of(envelope, Position(TOPIC, 0, first_offset + n)) for n, envelope in enumerate(envelopes)]


def arrivals_of(*names: str) -> list[Envelope[Any]]:
    return [partner_created(name) for name in names]


def test_a_run_is_folded_in_order_by_one_call_of_its_handler(roster: Roster) -> None:
    applied = roster.apply_run(run_of(*arrivals_of("ann", "bob", "ann", "ann")))

    assert applied == [True, True, True, True]
    assert roster.segments == [4]
    assert roster.arrivals() == [("ann", 0), ("ann", 1), ("ann", 2), ("bob", 0)]
    assert roster.cards() == ["ann", "bob"]
    assert roster.counts() == {"ann": 3, "bob": 1}
    assert roster.stored_offset(TOPIC, 0) == 3


def test_each_segment_of_a_run_sees_what_the_segments_before_it_wrote(roster: Roster) -> None:
    run = run_of(partner_created("ann"), partner_created("ann"), status_changed("ann"),
                 partner_created("ann"), partner_created("bob"), status_changed("bob", "inactive"))

    roster.apply_run(run)

    assert roster.segments == [2, 1, 2, 1]
    assert roster.statuses() == {"ann": ("suspended", 2), "bob": ("inactive", 1)}
    assert roster.arrivals() == [("ann", 0), ("ann", 1), ("ann", 2), ("bob", 0)]
    assert roster.cards() == ["ann", "bob"]  # the card issued in the first segment was seen


def test_a_record_of_a_type_without_a_handler_changes_nothing_but_moves_the_position(roster: Roster) -> None:
    unhandled = Envelope.wrap(OfferStatusChanged(offer_id="o-1", status=OfferStatus.PAUSED), producer="test")

    assert roster.apply_run(run_of(partner_created("cy"), unhandled, partner_created("cy"))) == [True] * 3

    assert roster.segments == [2]  # the records around it are one segment
    assert roster.counts() == {"cy": 2}
    assert roster.stored_offset(TOPIC, 0) == 2


def test_an_event_id_seen_earlier_in_the_run_or_before_it_is_not_handed_to_the_handler(
    roster: Roster,
) -> None:
    first = partner_created("cy")
    assert roster.apply_run(run_of(first, first)) == [True, False]
    assert roster.apply_run(run_of(first, partner_created("dee"), first_offset=2)) == [False, True]

    assert roster.counts() == {"cy": 1, "dee": 1}
    assert roster.attempts == {"cy": 1, "dee": 1}
    assert roster.stored_offset(TOPIC, 0) == 3


def test_a_run_with_a_failing_record_commits_nothing_of_the_run(roster: Roster) -> None:
    roster.apply_run(run_of(partner_created("eve")))
    roster.refusals["gus"] = RuntimeError("gus is refused")

    with pytest.raises(RuntimeError, match="gus is refused"):
        roster.apply_run(run_of(*arrivals_of("fay", "eve", "gus", "hal"), first_offset=1))

    assert roster.counts() == {"eve": 1}
    assert roster.arrivals() == [("eve", 0)]
    assert roster.cards() == ["eve"]
    assert roster.stored_offset(TOPIC, 0) == 0


def test_reads_from_other_threads_do_not_see_a_run_before_it_commits(roster: Roster) -> None:
    seen_meanwhile: list[dict[str, int]] = []

    def read_from_another_thread(run: Any) -> Changes:
        reader = threading.Thread(target=lambda: seen_meanwhile.append(roster.counts()))
        reader.start()
        reader.join()
        return Changes()

    handlers = Handlers({PartnerCreated: roster.on_partners_created,
                         PartnerStatusChanged: read_from_another_thread})
    roster.apply_run(run_of(partner_created("kim"), status_changed("kim")), handlers)

    assert seen_meanwhile == [{}]  # "kim" was written in the run, not yet committed
    assert roster.counts() == {"kim": 1}


async def send_in_one_batch(producer: AIOKafkaProducer, topic: str, *names: str) -> None:
    """Keyed by name: a dead letter holds back only its own key's later records (test_blocking)."""
    deliveries = [await producer.send(topic, encode(partner_created(name)), key=name.encode())
                  for name in names]
    for delivery in deliveries:
        await delivery


async def test_a_record_parked_in_the_middle_of_a_run_is_applied_once_after_the_ones_before_it(
    roster: Roster, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["late"] = RetryLater("its offer has not arrived")
    await send_in_one_batch(raw_producer, topic, "a", "b", "late", "c", "d")

    async with running(consumer_for(roster, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 1)  # a and b, one at a time
        assert roster.counts() == {"a": 1, "b": 1}
        del roster.refusals["late"]
        await eventually(lambda: roster.stored_offset(topic, 0) == 4)

    assert roster.counts() == {"a": 1, "b": 1, "late": 1, "c": 1, "d": 1}
    assert roster.arrivals() == [("a", 0), ("b", 0), ("c", 0), ("d", 0), ("late", 0)]
    assert consumed(topic, "applied") == 5


async def test_an_unprocessable_record_in_a_run_is_dead_lettered_and_the_rest_apply_once(
    roster: Roster, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    roster.refusals["bad"] = Unprocessable("bad can never be applied")
    await send_in_one_batch(raw_producer, topic, "p", "q", "bad", "r")

    async with running(consumer_for(roster, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 3)

    assert roster.counts() == {"p": 1, "q": 1, "r": 1}
    assert roster.attempts["bad"] == 2  # in the run, then alone (a run of one)
    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)
    await dlq.start()
    try:
        batch = await dlq.getmany(timeout_ms=5000)
    finally:
        await dlq.stop()
    [dead] = batch[TopicPartition(f"{topic}.dlq", 0)]
    assert dict(dead.headers)["dlq.reason"] == b"unprocessable: bad can never be applied"
    assert dict(dead.headers)["dlq.source"] == f"{topic}#0@2".encode()


async def test_a_fetch_of_many_records_commits_in_runs_with_every_record_counted_once(
    roster: Roster, topic: str, kafka_bootstrap: str, publisher: Publisher,
    raw_producer: AIOKafkaProducer, group_prefix: str,
) -> None:
    names = [f"n{n % 7}" for n in range(250)]
    await send_in_one_batch(raw_producer, topic, *names)

    async with running(consumer_for(roster, topic, kafka_bootstrap, publisher, group_prefix)):
        await eventually(lambda: roster.stored_offset(topic, 0) == 249)

    assert roster.counts() == {f"n{k}": names.count(f"n{k}") for k in range(7)}
    assert roster.arrivals() == sorted((f"n{k}", i) for k in range(7) for i in range(names.count(f"n{k}")))
    assert sorted(roster.cards()) == [f"n{k}" for k in range(7)]
    assert roster.attempts.total() == 250  # every run committed: no record was applied one by one


def test_a_type_its_handler_keeps_idempotently_is_handed_over_every_time_and_never_claimed(
    roster: Roster,
) -> None:
    """An ``idempotent`` type's event_ids are not claimed in the inbox: a record given
    twice reaches the handler twice (it keeps each by its own key), and no inbox row is
    left behind; the other types are still claimed once."""
    first, status = partner_created("ivy"), status_changed("ivy")
    by_type = {PartnerCreated: roster.on_partners_created, PartnerStatusChanged: roster.on_status_changes}
    handlers = Handlers(by_type, idempotent=frozenset({PartnerCreated}))

    applied = roster.apply_run(run_of(first, first, status, status), handlers)

    assert applied == [True, True, True, False]
    assert roster.attempts == {"ivy": 2}  # both copies handed over: the handler dedupes by key
    assert not roster.has_applied(first.event_id)
    assert roster.has_applied(status.event_id)


def test_only_a_handled_type_can_be_declared_idempotent() -> None:
    with pytest.raises(TypeError, match="idempotent"):
        handles(PartnerCreated, idempotent=(PartnerStatusChanged,))


def test_the_idempotent_types_a_store_declares_are_the_ones_its_handlers_do_not_claim() -> None:
    class Keyed:
        @handles(PartnerCreated, PartnerStatusChanged, idempotent=(PartnerCreated,))
        def on_partners(self, run: Any) -> Changes:
            return Changes()

    handlers = Handlers.of(Keyed())
    created, changed = run_of(partner_created("jo"), status_changed("jo"))
    assert (handlers.claims(created), handlers.claims(changed)) == (False, True)
