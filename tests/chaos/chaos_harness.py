"""The chaos suite's machinery: steady client load on the running platform, a ledger of
everything the platform acknowledged, and the checks that nothing acknowledged was lost
or counted twice, read against the log itself (never against the services' own views).

The load is what the platform's real clients do: browsers click tracking links,
advertiser servers send postbacks with the offer's token, and retry a transport error
or a 503 with the very same request (a retried postback must get the same
conversion_id), and an admin creates partners, approves them and hands out their links.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from afflux_contracts import (
    ATTRIBUTION,
    PARTNERS,
    TRACKING,
    ClickRecorded,
    ConversionAttributed,
    ConversionRejected,
    ConversionReported,
    ConversionStatus,
    PartnerCreated,
    round_money,
)
from afflux_infra.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from afflux_infra.platform import Platform
from afflux_infra.processes import ServiceProcess
from afflux_infra.testing import read_envelopes, read_topic

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}
PERCENT = Decimal("8")
RETRY_STATUSES = frozenset({502, 503, 504})
"""What a real client retries besides a transport error: the platform saying "not now"."""
GIVE_UP_AFTER = 180.0
"""A client that has retried this long reports the request as never answered."""
ROWS: list[Row] = []
"""Every fault's row of the table, printed at the end of the session (conftest)."""


@dataclass(frozen=True)
class Link:
    partner_id: str
    url: str


@dataclass(frozen=True)
class Postback:
    """A postback answered 200: what was sent and the conversion_id it was given."""

    conversion_id: str
    transaction_id: str
    partner_id: str
    order_id: str
    amount: Decimal
    phase: str

    @property
    def payout(self) -> Decimal:
        return round_money(self.amount * PERCENT / 100, "USD")


@dataclass
class Ledger:
    """Everything the platform acknowledged to a client, tagged with the fault (phase)."""

    offer_id: str
    token: str
    links: list[Link]
    clicks: dict[str, str] = field(default_factory=dict)
    """transaction_id → phase, for every click answered with a redirect to the offer."""
    postbacks: dict[str, Postback] = field(default_factory=dict)
    partners: dict[str, str] = field(default_factory=dict)
    """partner_id → phase, for every partner creation answered 201 or 202."""
    answered: Counter[str] = field(default_factory=Counter)
    """phase → requests answered (retries of one request count once, when answered)."""
    retried: Counter[str] = field(default_factory=Counter)
    """phase → attempts that failed with a transport error or a 5xx and were sent again."""
    problems: list[str] = field(default_factory=list)
    """Answers no client should ever get (a 4xx/5xx not worth retrying, a retried postback
    given another conversion_id, a request never answered)."""


class Client:
    """One HTTP client that retries like an advertiser's server or a browser would."""

    def __init__(self, ledger: Ledger, phase: Callable[[], str]) -> None:
        self.ledger = ledger
        self.phase = phase
        self.http = httpx.AsyncClient(timeout=10, headers=BROWSER)

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """The answer to ``method url``, sent again after a transport error or a 502/503/504
        (0.1 s apart); None if nothing answered within ``GIVE_UP_AFTER`` seconds."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            try:
                response = await self.http.request(method, url, **kwargs)
                if response.status_code not in RETRY_STATUSES:
                    return response
            except httpx.TransportError:
                pass
            self.ledger.retried[self.phase()] += 1
            if time.monotonic() > deadline:
                self.ledger.problems.append(f"{method} {url}: never answered in {GIVE_UP_AFTER}s")
                return None
            await asyncio.sleep(0.1)

    async def click(self, link: Link) -> str | None:
        """Click ``link`` like a browser; the click's transaction_id once it is redirected."""
        phase = self.phase()
        response = await self.send("GET", link.url)
        if response is None:
            return None
        location = response.headers.get("location", "")
        if response.status_code != 302 or not location.startswith("https://shop.example/"):
            self.ledger.problems.append(f"click on {link.url}: {response.status_code} {response.text[:200]}")
            return None
        transaction_id = str(parse_qs(urlsplit(location).query)["tid"][0])
        self.ledger.clicks[transaction_id] = phase
        self.ledger.answered[phase] += 1
        return transaction_id

    async def postback(self, tracking_url: str, transaction_id: str, partner_id: str, amount: Decimal,
                       *, repeat: bool = False) -> Postback | None:
        """Report a sale on ``transaction_id`` (order id of its own); with ``repeat`` send the
        very same report once more after its 200, as a server whose ack got lost would."""
        phase = self.phase()
        params = {"transaction_id": transaction_id, "amount": str(amount), "currency": "USD",
                  "order_id": f"order-{secrets.token_hex(8)}", "token": self.ledger.token}
        response = await self.send("GET", f"{tracking_url}/postback", params=params)
        if response is None:
            return None
        if response.status_code != 200:
            self.ledger.problems.append(f"postback {params}: {response.status_code} {response.text[:200]}")
            return None
        postback = Postback(str(response.json()["conversion_id"]), transaction_id, partner_id,
                            params["order_id"], amount, phase)
        self.ledger.postbacks[postback.conversion_id] = postback
        self.ledger.answered[phase] += 1
        if repeat:
            again = await self.send("GET", f"{tracking_url}/postback", params=params)
            if again is not None and again.status_code == 200:
                self.ledger.answered[phase] += 1
                if again.json()["conversion_id"] != postback.conversion_id:
                    self.ledger.problems.append(
                        f"a retried postback got conversion_id {again.json()['conversion_id']}, "
                        f"not {postback.conversion_id}")
        return postback


@dataclass
class Load:
    """Steady traffic on the platform until ``stop`` is set: ``workers`` browsers each
    clicking a link and reporting a sale on the click, paced to ``rate`` requests/s in
    all, and an admin creating, approving and linking a partner every ``admin_every`` s
    (on each of ``partners_urls`` in turn)."""

    platform: Platform
    ledger: Ledger
    rate: float
    workers: int
    admin_every: float
    seed: int
    phase_name: str = "setup"
    partners_urls: list[str] = field(default_factory=list)

    def phase(self) -> str:
        return self.phase_name

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._browse(stop, n) for n in range(self.workers)), self._administer(stop))

    async def _browse(self, stop: asyncio.Event, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        client = Client(self.ledger, self.phase)
        interval = 2 * self.workers / self.rate  # one click and one postback per round
        tracking = self.platform.url("tracking")
        # Links handed out before this fault: a link handed out during a fault is used from
        # the next one on (see test_chaos.py for why: a known bug on tracking's restart).
        links = list(self.ledger.links)
        try:
            while not stop.is_set():
                started = time.monotonic()
                link = rng.choice(links)
                transaction_id = await client.click(link)
                if transaction_id is not None:
                    amount = Decimal(rng.randrange(100, 50_000)) / 100
                    await client.postback(tracking, transaction_id, link.partner_id, amount,
                                          repeat=rng.random() < 0.1)
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, interval - (time.monotonic() - started)))
        finally:
            await client.close()

    async def _administer(self, stop: asyncio.Event) -> None:
        client = Client(self.ledger, self.phase)
        client.http.headers["Authorization"] = f"Bearer {self.platform.admin_token}"
        turn = 0
        try:
            while not stop.is_set():
                urls = self.partners_urls or [self.platform.url("partners")]
                link = await new_partner_link(client, urls[turn % len(urls)], self.ledger.offer_id)
                turn += 1
                if link is not None:
                    self.ledger.links.append(link)
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.admin_every)
        finally:
            await client.close()


async def new_partner_link(client: Client, partners_url: str, offer_id: str) -> Link | None:
    """Create a partner, approve it on the offer and get its tracking link (each retried
    like any client would); the link, or None (the reason is in the ledger's problems)."""
    phase = client.phase()
    name = f"Chaos {secrets.token_hex(4)}"
    created = await client.send("POST", f"{partners_url}/v1/partners",
                                json={"name": name, "email": f"{name.split()[1]}@partners.example"})
    if created is None or created.status_code not in (201, 202):
        client.ledger.problems.append(f"creating a partner: {created and created.status_code}")
        return None
    partner_id = str(created.json()["partner_id"])
    client.ledger.partners[partner_id] = phase
    client.ledger.answered[phase] += 1
    approved = await client.send("PUT", f"{partners_url}/v1/offers/{offer_id}/partners/{partner_id}",
                                 json={"approved": True})
    if approved is None or approved.status_code not in (200, 202):
        client.ledger.problems.append(f"approving {partner_id}: {approved and approved.status_code}")
        return None
    client.ledger.answered[phase] += 1
    linked = await client.send("GET", f"{partners_url}/v1/offers/{offer_id}/partners/{partner_id}"
                               "/tracking-link")
    if linked is None or linked.status_code != 200:
        client.ledger.problems.append(f"link of {partner_id}: {linked and linked.status_code}")
        return None
    client.ledger.answered[phase] += 1
    return Link(partner_id, str(linked.json()["url"]))


# -- the log, read independently -------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    event_id: str
    event_type: str
    partner_id: str | None
    offer_id: str | None
    order_id: str | None
    payout: Decimal
    bucket: str | None
    """Where the commission starts ("accrued" / "pending"); None for a rejection."""


_BUCKET = {ConversionStatus.APPROVED: "accrued", ConversionStatus.ATTRIBUTED: "accrued",
           ConversionStatus.PENDING: "pending"}


async def decisions_on_the_log(bootstrap: str) -> dict[str, dict[str, Decision]]:
    """conversion_id → its decisions on afflux.attribution.v1 by event_id, in log order
    (a relay re-sending after a crash repeats an event_id: one decision, not two)."""
    by_conversion: dict[str, dict[str, Decision]] = defaultdict(dict)
    records = await read_envelopes(bootstrap, ATTRIBUTION.name, ATTRIBUTION.partitions)
    for _, envelope in sorted(records, key=lambda pair: (pair[0].partition, pair[0].offset)):
        event = envelope.payload
        if isinstance(event, ConversionAttributed):
            decision = Decision(str(envelope.event_id), envelope.event_type, event.partner_id, event.offer_id,
                                event.order_id, round_money(event.payout.amount, event.payout.currency),
                                _BUCKET.get(event.status))
        elif isinstance(event, ConversionRejected):
            decision = Decision(str(envelope.event_id), envelope.event_type, event.partner_id, event.offer_id,
                                event.order_id, Decimal(0), None)
        else:
            continue
        by_conversion[event.conversion_id].setdefault(decision.event_id, decision)
    return by_conversion


def fold_balances(decided: dict[str, dict[str, Decision]]) -> dict[str, dict[str, Decimal]]:
    """partner_id → bucket → USD, folded from the log as the design says payouts must: each
    conversion once, by its first decision, its payout in the bucket its status opens."""
    balances: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for decisions in decided.values():
        first = next(iter(decisions.values()))
        if first.bucket is not None and first.partner_id is not None:
            balances[first.partner_id][first.bucket] += first.payout
    return {partner: dict(buckets) for partner, buckets in balances.items()}


async def balances_of(http: httpx.AsyncClient, payouts_url: str, partner_ids: set[str],
                      ) -> dict[str, dict[str, Decimal]] | None:
    """The payouts API's non-zero USD buckets per partner; None if it does not answer."""
    found: dict[str, dict[str, Decimal]] = {}
    try:
        for partner_id in sorted(partner_ids):
            response = await http.get(f"{payouts_url}/v1/partners/{partner_id}/balance")
            if response.status_code != 200:
                return None
            buckets = response.json()["balances"].get("USD", {})
            non_zero = {bucket: Decimal(amount) for bucket, amount in buckets.items() if Decimal(amount)}
            if non_zero:
                found[partner_id] = non_zero
    except httpx.TransportError:
        return None
    return found


# -- one fault, measured ---------------------------------------------------------------


@dataclass
class Row:
    fault: str
    load: float
    """Requests answered per second while the load ran (warm-up, fault and tail)."""
    checked: int
    lost: int
    duplicated: int
    recovery: float | None
    notes: str = ""


@dataclass
class Verdict:
    """What the checks of one fault found; ``failures`` says what, for the assertion."""

    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    failures: list[str] = field(default_factory=list)

    def lose(self, count: int, what: str) -> None:
        if count:
            self.lost += count
            self.failures.append(f"lost: {count} {what}")

    def duplicate(self, count: int, what: str) -> None:
        if count:
            self.duplicated += count
            self.failures.append(f"duplicated: {count} {what}")


@dataclass
class Probe:
    """A sale on a partner no load touches, reported at a fault's end: the fault is over
    for the business once the partner's balance on the payouts API shows it."""

    link: Link
    expected: Decimal = Decimal(0)

    async def measure(self, platform: Platform, ledger: Ledger, phase: str, since: float) -> float | None:
        """Seconds from ``since`` (the fault's end) until the probe's sale is on the
        balance; None if not within ``GIVE_UP_AFTER``."""
        client = Client(ledger, lambda: phase)
        client.http.headers["Authorization"] = f"Bearer {platform.admin_token}"
        try:
            transaction_id = await client.click(self.link)
            if transaction_id is None:
                return None
            postback = await client.postback(platform.url("tracking"), transaction_id, self.link.partner_id,
                                             Decimal("100.00"))
            if postback is None:
                return None
            self.expected += postback.payout
            deadline = time.monotonic() + GIVE_UP_AFTER
            while time.monotonic() < deadline:
                found = await balances_of(client.http, platform.url("payouts"), {self.link.partner_id})
                if found is not None and found.get(self.link.partner_id, {}).get("accrued") == self.expected:
                    return time.monotonic() - since
                await asyncio.sleep(0.05)
            return None
        finally:
            await client.close()


async def check(platform: Platform, ledger: Ledger, phase: str, replay_number: int,
                settle: float = 120.0) -> Verdict:
    """Every check of the suite, for what ``phase`` acknowledged (the log and the balances
    are checked whole): clicks and postbacks on the tracking log, partner writes on the
    partners log, each conversion decided once and priced as its offer says, every
    balance equal to the fold of the log, and the same balances from a replay."""
    verdict = Verdict()
    bootstrap = platform.infrastructure.bootstrap_servers
    clicks = {tid for tid, tagged in ledger.clicks.items() if tagged == phase}
    postbacks = {cid: p for cid, p in ledger.postbacks.items() if p.phase == phase}
    partners = {pid for pid, tagged in ledger.partners.items() if tagged == phase}

    tracking = await read_envelopes(bootstrap, TRACKING.name, TRACKING.partitions)
    clicked = {e.payload.transaction_id for _, e in tracking if isinstance(e.payload, ClickRecorded)}
    reported = {e.payload.conversion_id for _, e in tracking if isinstance(e.payload, ConversionReported)}
    verdict.lose(len(clicks - clicked), "redirected clicks not on afflux.tracking.v1")
    verdict.lose(len(set(postbacks) - reported), "postbacks answered 200 not on afflux.tracking.v1")
    partners_log = await read_envelopes(bootstrap, PARTNERS.name, PARTNERS.partitions)
    created = Counter(e.payload.partner_id for _, e in partners_log if isinstance(e.payload, PartnerCreated))
    verdict.lose(len(partners - set(created)), "acknowledged partner creations not on afflux.partners.v1")
    created_ids = defaultdict(set)
    for _, e in partners_log:
        if isinstance(e.payload, PartnerCreated):
            created_ids[e.payload.partner_id].add(e.event_id)
    verdict.duplicate(sum(len(created_ids[p]) > 1 for p in partners), "partners created twice on the log")

    deadline = time.monotonic() + settle
    while True:
        decided = await decisions_on_the_log(bootstrap)
        undecided = set(ledger.postbacks) - set(decided)
        if not undecided or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    verdict.lose(len(set(postbacks) & undecided),
                 "accepted conversions never decided on afflux.attribution.v1")
    verdict.duplicate(sum(len(decided.get(cid, {})) > 1 for cid in postbacks),
                      "conversions decided more than once (distinct event_ids)")
    credited = Counter((d.offer_id, d.order_id) for ds in decided.values() for d in ds.values()
                       if d.event_type == "ConversionAttributed")
    verdict.duplicate(sum(n - 1 for n in credited.values() if n > 1), "orders credited more than once")
    mispriced = [cid for cid, p in postbacks.items() if cid in decided
                 and next(iter(decided[cid].values())).payout != p.payout]
    verdict.lose(len(mispriced), f"conversions not attributed at {PERCENT}% of their sale")
    verdict.checked = len(clicks) + len(postbacks) + len(partners) + len(set(postbacks) - undecided)

    expected = fold_balances(decided)
    everyone = set(expected) | {p.partner_id for p in ledger.postbacks.values()}
    live = await settled_balances(platform.url("payouts"), platform.admin_token, everyone, expected, deadline)
    compare_balances(verdict, "payouts API", live, expected)
    replayed = await replay_balances(platform, everyone, expected, replay_number, settle)
    compare_balances(verdict, "replay from offset 0", replayed, expected)
    verdict.failures.extend(ledger.problems)
    ledger.problems.clear()
    return verdict


async def settled_balances(payouts_url: str, admin_token: str, partner_ids: set[str],
                           expected: dict[str, dict[str, Decimal]], deadline: float,
                           ) -> dict[str, dict[str, Decimal]]:
    """The balances once they equal ``expected``, or as they are at ``deadline``."""
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        found: dict[str, dict[str, Decimal]] | None = None
        while True:
            found = await balances_of(http, payouts_url, partner_ids) or found
            if found == expected or time.monotonic() > deadline:
                return found or {}
            await asyncio.sleep(0.25)


def compare_balances(verdict: Verdict, source: str, found: dict[str, dict[str, Decimal]],
                     expected: dict[str, dict[str, Decimal]]) -> None:
    """A balance short of the fold lost something; one over it counted something twice."""
    short = over = 0
    for partner in set(found) | set(expected):
        for bucket in set(found.get(partner, {})) | set(expected.get(partner, {})):
            difference = found.get(partner, {}).get(bucket, Decimal(0)) - expected.get(partner, {}).get(
                bucket, Decimal(0))
            short += difference < 0
            over += difference > 0
    verdict.lose(short, f"partner balances on the {source} short of the log's fold")
    verdict.duplicate(over, f"partner balances on the {source} over the log's fold")


async def replay_balances(platform: Platform, partner_ids: set[str], expected: dict[str, dict[str, Decimal]],
                          number: int, settle: float) -> dict[str, dict[str, Decimal]]:
    """The balances of a fresh payouts process on a fresh schema that reads
    afflux.attribution.v1 from offset 0 (a consumer group of its own, no stored position)."""
    replay = platform.another_instance("payouts", free_port(), label=f"replay-{number}", env={
        "AFFLUX_PAYOUTS_SCHEMA": f"payouts_replay_{number}_{secrets.token_hex(3)}",
        "AFFLUX_CONSUMER_GROUP_PREFIX": f"replay-{secrets.token_hex(4)}",
    })
    replay.start()
    try:
        await asyncio.to_thread(replay.wait_until, "/readyz", 90)
        return await settled_balances(replay.url, platform.admin_token, partner_ids, expected,
                                      time.monotonic() + settle)
    finally:
        await asyncio.to_thread(replay.stop)


# -- poison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    topic: str
    value: bytes
    what: str


async def poison_records(bootstrap: str) -> list[Poison]:
    """For each consumed topic: bytes that are not an envelope, and a real envelope from
    the topic with a new event_id and a payload field broken so that it violates its schema
    (a conversion or partner id of its own, so that any effect of it could be seen)."""
    breakages: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
        PARTNERS.name: ("PartnerCreated", lambda p: p.update(partner_id=f"poison-{secrets.token_hex(4)}",
                                                               name=None)),
        TRACKING.name: ("ConversionReported", lambda p: p.update(
            conversion_id=f"poison-{secrets.token_hex(8)}", amount="twelve dollars")),
        ATTRIBUTION.name: ("ConversionAttributed", lambda p: p.update(
            conversion_id=f"poison-{secrets.token_hex(8)}", payout={"amount": "lots", "currency": "USD"})),
    }
    poisons = []
    for topic, (event_type, breakage) in breakages.items():
        poisons.append(Poison(topic, b"\x00\xffnot an envelope " + secrets.token_bytes(8), "bytes"))
        raw = await first_of(bootstrap, topic, event_type)
        raw["event_id"] = str(_uuid7())
        breakage(raw["payload"])
        poisons.append(Poison(topic, json.dumps(raw).encode(), f"invalid {event_type}"))
    return poisons


async def first_of(bootstrap: str, topic: str, event_type: str, timeout: float = 30.0) -> dict[str, Any]:
    """The first record of ``event_type`` on ``topic``, as JSON (read from offset 0 while
    the load goes on: ``read_topic`` would wait for a quiet log)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    with suppress(ValueError):
                        raw = json.loads(record.value or b"")
                        if isinstance(raw, dict) and raw.get("event_type") == event_type:
                            return raw
        raise AssertionError(f"no {event_type} on {topic} within {timeout}s")
    finally:
        await consumer.stop()


def _uuid7() -> Any:
    from afflux_contracts import new_event_id

    return new_event_id()


async def publish_raw(bootstrap: str, poisons: list[Poison]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for poison in poisons:
            await producer.send_and_wait(poison.topic, poison.value, key=b"poison")
    finally:
        await producer.stop()


async def dead_lettered(bootstrap: str, poisons: list[Poison], groups: dict[str, set[str]],
                        timeout: float = 60.0) -> Verdict:
    """Each poison on ``<topic>.dlq`` once per consumer group of ``groups[topic]`` (the
    platform's own consumers; a replay's consumer dead-letters it again, under its group)."""
    verdict = Verdict(checked=len(poisons))
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[bytes, Counter[str]] = defaultdict(Counter)
        for topic in {p.topic for p in poisons}:
            for record in await read_topic(bootstrap, f"{topic}.dlq", 4):
                consumer = dict(record.headers).get("dlq.consumer", b"").decode()
                seen[record.value or b""][consumer] += 1
        missing = [(p, group) for p in poisons for group in groups[p.topic] if not seen[p.value][group]]
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    verdict.lose(len(missing),
                 f"poison records not dead-lettered: {[(p.topic, p.what, g) for p, g in missing]}")
    verdict.duplicate(sum(n - 1 for p in poisons for g, n in seen[p.value].items()
                          if g in groups[p.topic] and n > 1),
                      "poison records dead-lettered twice by one consumer")
    return verdict


@dataclass(frozen=True)
class Form:
    """How hard and how long each fault is."""

    name: str
    rate: float
    """Requests per second the browsers aim at (one click and one postback per round)."""
    workers: int
    admin_every: float
    """Seconds between two partner creations (create, approve, link: three requests)."""
    partners: int
    warm: float
    """Seconds of load before the fault."""
    tail: float
    """Seconds of load after the fault's end."""
    down: float
    """Seconds a killed service or a stopped PostgreSQL stays down."""
    pause: float
    """Seconds the broker is paused."""
    relay_kills: int
    overlap: float
    """Seconds two instances of a service run side by side."""


SHORT_FORM = Form("short", rate=30, workers=4, admin_every=1.5, partners=3, warm=2, tail=2, down=0.5,
                  pause=5, relay_kills=2, overlap=6)
LONG_FORM = Form("long", rate=60, workers=8, admin_every=1.0, partners=5, warm=5, tail=5, down=2,
                 pause=30, relay_kills=6, overlap=20)


@dataclass
class Chaos:
    platform: Platform
    broker: EmbeddedBroker
    postgres: EmbeddedPostgres
    ledger: Ledger
    probe: Probe
    form: Form
    group_prefix: str
    replays: int = 0


# -- faults ----------------------------------------------------------------------------


async def kill_and_restart(service: ServiceProcess, down_for: float) -> None:
    """SIGKILL, ``down_for`` seconds of nothing, then the same command again."""
    await asyncio.to_thread(service.kill9)
    await asyncio.sleep(down_for)
    service.start()


async def ready(service: ServiceProcess, timeout: float = 90.0) -> None:
    await asyncio.to_thread(service.wait_until, "/readyz", timeout)


Fault = Callable[[], Awaitable[str]]
"""Injects a fault and returns once it is over (a note for the table, maybe empty)."""
