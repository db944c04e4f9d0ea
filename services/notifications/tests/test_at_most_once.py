"""The mail worker against a real PostgreSQL and an SMTP server the test starts: each
window a crash can fall in, and what becomes of the mail. A worker "dies" by losing its
lease (its PostgreSQL session ends, as on ``kill -9``)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from notifications_fixtures import ScriptedSmtp, SessionInfra
from psycopg import sql

from afflux_notifications.adapters.lease import PostgresLease
from afflux_notifications.adapters.smtp import SmtpMailer, SmtpServer
from afflux_notifications.adapters.store import NotificationsStore
from afflux_notifications.adapters.templates import JinjaRenderer
from afflux_notifications.application.sending import MailWorker
from afflux_notifications.domain.delivery import RetryPolicy
from afflux_notifications.domain.mailing import to_caller
from afflux_plumbing.eventstore import open_store

DATABASES: dict[int, str] = {}


@pytest.fixture(scope="module")
def store(infra: SessionInfra) -> NotificationsStore:
    url = infra.new_database()
    opened = open_store(NotificationsStore, url, "notifications")
    DATABASES[id(opened)] = url
    return opened


@pytest.fixture
async def smtp() -> AsyncIterator[ScriptedSmtp]:
    server = await ScriptedSmtp().start()
    yield server
    await server.stop()


async def worker(store: NotificationsStore, smtp: ScriptedSmtp) -> MailWorker:
    lease = PostgresLease(_url(store))
    await lease.hold()
    mailer = SmtpMailer(SmtpServer("127.0.0.1", smtp.port), "Acme <no-reply@acme.example>", timeout=5)
    return MailWorker(store, JinjaRenderer(program_name="Acme", portal_url="https://p.example"), mailer,
                      lease, RetryPolicy(0.01, 0.02, 60), domain="acme.example")


def _url(store: NotificationsStore) -> str:
    return DATABASES[id(store)]


def queue_one(store: NotificationsStore) -> tuple[str, str]:
    address = f"u-{secrets.token_hex(4)}@example.com"
    mails = to_caller("verify_email", [address], {"link": "https://x.example/v?t=SECRET"},
                      source=f"api:test:{address}")
    store.queue_requested(mails, "r" * 64)
    return mails[0].notification_id, address


def row(store: NotificationsStore, notification_id: str) -> dict[str, object]:
    return next(r for r in store.page(recipient=None, partner_id=None, status=None, after=None, limit=10_000)
                if r["notification_id"] == notification_id)


async def test_a_queued_mail_is_sent_once_with_a_message_id_of_its_own_and_forgets_its_data(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    notification_id, address = queue_one(store)
    sender = await worker(store, smtp)
    try:
        await sender.round()
        await sender.round()
    finally:
        await sender.lease.release()
    assert [mail.message_id for mail in smtp.to(address)] == [f"<{notification_id}@acme.example>"]
    assert "SECRET" in smtp.to(address)[0].text
    assert row(store, notification_id)["status"] == "sent"
    assert store.query(_data_of(store), (notification_id,))[0]["data"] is None


def _data_of(store: NotificationsStore) -> sql.Composed:
    return sql.SQL("SELECT data FROM {} WHERE notification_id = %s").format(store.table("notifications"))


async def test_a_claim_of_a_dead_worker_that_handed_nothing_over_is_taken_over_at_once_and_sent_once(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    notification_id, address = queue_one(store)
    dead = PostgresLease(_url(store))
    await dead.hold()
    assert [m.notification_id for m in store.claim(dead.worker, 100)] == [notification_id]
    await dead.release()  # it died before its hand-over
    sender = await worker(store, smtp)
    try:
        await sender.round()
    finally:
        await sender.lease.release()
    assert len(smtp.to(address)) == 1
    assert row(store, notification_id)["status"] == "sent"


async def test_a_worker_whose_claim_was_taken_over_never_hands_the_mail_over(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    notification_id, address = queue_one(store)
    slow = PostgresLease(_url(store))
    await slow.hold()
    [stale] = store.claim(slow.worker, 100)
    await slow.release()  # its lease lapsed (say its database connection broke) ...
    sender = await worker(store, smtp)
    try:
        await sender.round()  # ... and another worker took the mail over and sent it
    finally:
        await sender.lease.release()
    assert not store.hand_over(notification_id, stale.claim, "s", "<m>")  # the slow one finds out before DATA
    assert len(smtp.to(address)) == 1


async def test_a_mail_a_dead_worker_was_handing_over_is_uncertain_and_never_sent_again(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    notification_id, address = queue_one(store)
    dead = PostgresLease(_url(store))
    await dead.hold()
    [claimed] = store.claim(dead.worker, 100)
    assert store.hand_over(notification_id, claimed.claim, "Confirm", f"<{notification_id}@acme.example>")
    await dead.release()  # killed during DATA: the server may or may not have the message
    sender = await worker(store, smtp)
    try:
        assert await sender.sweep() >= 1
        for _ in range(3):
            await sender.round()
    finally:
        await sender.lease.release()
    assert smtp.to(address) == []
    found = row(store, notification_id)
    assert found["status"] == "uncertain" and "not sent again" in str(found["last_error"])


async def test_no_answer_after_the_message_is_uncertain_and_not_retried(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    notification_id, address = queue_one(store)
    smtp.hang_after_data = True
    sender = await worker(store, smtp)
    try:
        for _ in range(3):
            await sender.round()
    finally:
        await sender.lease.release()
    assert len(smtp.to(address)) == 1  # the server had it
    assert row(store, notification_id)["status"] == "uncertain"


async def test_a_4xx_is_retried_until_accepted_and_a_5xx_to_the_recipient_fails_at_once(
        store: NotificationsStore, smtp: ScriptedSmtp) -> None:
    later_id, later = queue_one(store)
    never_id, never = queue_one(store)
    tries: dict[str, int] = {}

    def refuse(address: str) -> int:
        tries[address] = tries.get(address, 0) + 1
        return 550 if address == never else 450 if tries[address] <= 2 else 0

    smtp.refuse = refuse
    sender = await worker(store, smtp)
    try:
        for _ in range(40):
            await sender.round()
            if row(store, later_id)["status"] == "sent":
                break
    finally:
        await sender.lease.release()
    assert len(smtp.to(later)) == 1 and row(store, later_id)["attempts"] == 3
    failed = row(store, never_id)
    assert failed["status"] == "failed" and failed["attempts"] == 1 and tries[never] == 1
    assert never not in str(failed["last_error"]) and "<recipient>" in str(failed["last_error"])
