"""A partner's receiver on loopback, builders of the events postbacks reads, and a
restartable postbacks service, for the tests."""

from __future__ import annotations

import secrets
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from afflux_contracts import (
    ConversionAttributed,
    ConversionStatus,
    ConversionStatusChanged,
    Envelope,
    Money,
    OfferCreated,
    OfferEvent,
    PartnerCreated,
    PartnerPostback,
    PayoutType,
    PostbackMethod,
    RelationshipSet,
    StatusChange,
    Terms,
)
from afflux_infra.testing import RunningService
from afflux_postbacks.entrypoints.main import build
from afflux_postbacks.settings import PostbacksSettings

ADMIN_TOKEN = "postbacks-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class SessionInfra(Protocol):
    """What these tests use of the session's ``infra`` fixture (afflux_infra.testing)."""

    @property
    def bootstrap_servers(self) -> str: ...

    def new_database(self) -> str: ...


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    method: str = "GET"
    body: bytes = b""
    client_port: int = 0
    """The caller's port: calls on one kept-alive connection share it."""


@dataclass
class Receiver:
    """A partner's tracker on 127.0.0.1: records every call; ``fail[path] = n`` answers
    500 to the first n calls of ``path``, ``delay[path]`` seconds before answering,
    ``redirect[path]`` answers 302 there, ``large[path]`` answers that many bytes."""

    calls: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    large: dict[str, int] = field(default_factory=dict)
    """Bytes of the 200 answer of a path (default: 2)."""
    port: int = 0
    bind: str = "127.0.0.1"
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as partners' trackers answer

            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.calls.append(Received(parts.path, parse_qs(parts.query, keep_blank_values=True),
                                                   dict(self.headers.items()), time.monotonic(),
                                                   self.command, body, self.client_address[1]))
                    failing = receiver.fail.get(parts.path, 0)
                    if failing:
                        receiver.fail[parts.path] = failing - 1
                time.sleep(receiver.delay.get(parts.path, 0.0))
                if parts.path in receiver.redirect:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect[parts.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"nope" if failing else b"x" * receiver.large.get(parts.path, 2)
                with suppress(OSError):  # the caller may be gone (killed, timed out)
                    self.send_response(500 if failing else 200)
                    self.send_header("Set-Cookie", "tracker=1; Path=/")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.bind, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.bind}:{self.port}{path}"

    def calls_to(self, path: str) -> list[Received]:
        with self._lock:
            return [call for call in self.calls if call.path == path]


def relationship(offer_id: str, partner_id: str, postback_url: str | None, *, method: str = "get",
                 status_changes: bool = False) -> Envelope[RelationshipSet]:
    return Envelope.wrap(RelationshipSet(
        offer_id=offer_id, partner_id=partner_id, approved=True, postback_url=postback_url,
        postback_method=PostbackMethod(method), postback_status_changes=status_changes), producer="test")


def partner(partner_id: str, postback_url: str | None, *, method: str = "get",
            status_changes: bool = False) -> Envelope[PartnerCreated]:
    """A partner whose global postback is ``postback_url`` (None: none)."""
    postback = None
    if postback_url is not None:
        postback = PartnerPostback(url=postback_url, method=PostbackMethod(method),
                                   status_changes=status_changes)
    return Envelope.wrap(PartnerCreated(partner_id=partner_id, name="Tracker", email="t@example.com",
                                        postback=postback), producer="test")


def offer(offer_id: str, *, silent: tuple[str, ...] = ()) -> Envelope[OfferCreated]:
    """An offer with the events ``sale`` and ``lead`` and those named in ``silent``, which
    do not fire partner postbacks."""
    payout = Terms(type=PayoutType.CPA, amount=Decimal("9.60"))
    events = [OfferEvent(name=name, payout=payout) for name in ("sale", "lead")]
    events += [OfferEvent(name=name, payout=payout, fires_partner_postback=False) for name in silent]
    return Envelope.wrap(OfferCreated(
        offer_id=offer_id, name="Offer", destination_url="https://shop.example/", currency="USD",
        payout=payout, events=tuple(events)), producer="test")


def status_changed(decision: Envelope[ConversionAttributed], status: str,
                   payout: str = "9.60") -> Envelope[ConversionStatusChanged]:
    conversion = decision.payload
    return Envelope.wrap(ConversionStatusChanged(
        conversion_id=conversion.conversion_id, partner_id=conversion.partner_id,
        offer_id=conversion.offer_id,
        status=StatusChange(status), previous_status=ConversionStatus.APPROVED,
        payout=Money(amount=Decimal(payout), currency="USD"), changed_at=BASE_TIME + timedelta(days=1)),
        producer="test")


def attributed(transaction_id: str, offer_id: str, partner_id: str, *, payout: str = "9.60",
               event: str = "sale", conversion_id: str | None = None,
               **subs: str) -> Envelope[ConversionAttributed]:
    """A conversion attributed to the partner; ``subs``: the click's ``sub1``..``sub5``."""
    return Envelope.wrap(ConversionAttributed(
        conversion_id=conversion_id or new_id("conv"), transaction_id=transaction_id, partner_id=partner_id,
        offer_id=offer_id, event=event, payout=Money(amount=Decimal(payout), currency="USD"),
        clicked_at=BASE_TIME, converted_at=BASE_TIME + timedelta(minutes=5), **subs), producer="test")


class RunningPostbacks(RunningService[PostbacksSettings]):
    """The postbacks service as its tests run it, with the test admin token; a test's
    ``settings`` (retries, give-up, loopback allowed) go over."""

    headers = ADMIN

    def __init__(
        self, database_url: str, kafka_bootstrap: str, group_prefix: str = "", **settings: Any
    ) -> None:
        super().__init__(PostbacksSettings, build, database_url, kafka_bootstrap, group_prefix,
                         **{"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, **settings})

    def postbacks(self, **params: Any) -> dict[str, Any]:
        """The delivery log, as an admin reads it (blocking: from a thread, ``eventually``)."""
        return self.get_json("/v1/postbacks", **params)

    def ended(self, partner_id: str, count: int = 1) -> list[dict[str, Any]] | None:
        """The partner's postbacks once ``count`` of them have ended (else None)."""
        rows: list[dict[str, Any]] = self.postbacks(partner_id=partner_id)["postbacks"]
        done = [row for row in rows if row["status"] in ("delivered", "failed", "skipped")]
        return rows if len(done) >= count else None
