"""The service as it runs (in the test's loop), fed through a broker of its own, sending
to an SMTP server the test starts with STARTTLS and AUTH required: ``AFFLUX_SMTP_URL``
with credentials and ``?starttls=true``, its certificate from a CA the test makes
(``AFFLUX_SMTP_CA_FILE``). One service for the module: consumer-group joins are slow."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from notifications_fixtures import (
    ADMIN,
    SENDER,
    RunningNotifications,
    ScriptedSmtp,
    SessionInfra,
    new_id,
    offer,
    offer_status,
    partner,
    relationship,
    statement_issued,
    statement_paid,
)
from psycopg import sql

from afflux_contracts import NOTIFICATIONS, PAYOUTS, NotificationSent, recipient_sha256
from afflux_infra.testing import broker_of_its_own, eventually, read_envelopes
from afflux_plumbing.publish import Publisher

STAFF = "ops@network.example"


@pytest.fixture(scope="module")
def bootstrap(infra: SessionInfra) -> Iterator[str]:
    """A broker of the module's own: the DLQs hold only this module's dead letters."""
    with broker_of_its_own(infra) as servers:
        yield servers


@pytest.fixture(scope="module")
async def log(bootstrap: str) -> AsyncIterator[Publisher]:
    publisher = Publisher(bootstrap, client_id="notifications-test")
    await publisher.start()
    yield publisher
    await publisher.stop()


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret:/@")
    return AuthResult(success=ok, auth_data=data)


@pytest.fixture(scope="module")
async def smtp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[ScriptedSmtp, Path]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = await ScriptedSmtp(smtp_options={
        "tls_context": context, "require_starttls": True, "auth_required": True,
        "auth_require_tls": True, "authenticator": authenticate}).start()
    yield server, ca_file
    await server.stop()


@pytest.fixture(scope="module")
async def service(infra: SessionInfra, bootstrap: str, smtp: tuple[ScriptedSmtp, Path]
                  ) -> AsyncIterator[RunningNotifications]:
    server, ca_file = smtp
    running = RunningNotifications(
        infra.new_database(), bootstrap,
        AFFLUX_SMTP_URL=f"smtp://mailer:s3cret%3A%2F%40@127.0.0.1:{server.port}?starttls=true",
        AFFLUX_SMTP_CA_FILE=str(ca_file), AFFLUX_STAFF_EMAILS=f"{STAFF}, not-an-address",
        AFFLUX_MAIL_FROM="Acme Partners <partners@acme.example>", AFFLUX_PROGRAM_NAME="Acme Partners")
    await running.start()
    yield running
    await running.stop()


async def test_a_statement_paid_reaches_the_partner_once_over_starttls_with_credentials_and_is_published(
        service: RunningNotifications, smtp: tuple[ScriptedSmtp, Path], log: Publisher, bootstrap: str,
) -> None:
    server, _ = smtp
    partner_id = new_id("p")
    email, contact = f"{partner_id}@creator.example", f"ops-{partner_id}@creator.example"
    paid = statement_paid(partner_id, "st-1", "42.50")
    for record in (partner(partner_id, email, contact), statement_issued(partner_id, "st-1"), paid, paid):
        await log.publish(record)  # the paid one twice: a redelivery
    await eventually(lambda: service.ended(4, partner_id=partner_id), timeout=30)

    got = server.to(email)
    assert sorted(mail.subject for mail in got) == ["Your Acme Partners statement st-1",
                                                    "Your Acme Partners statement st-1 is paid"]
    assert all(mail.authenticated_as == "mailer" and mail.tls for mail in got)
    assert all(mail.mail_from == "partners@acme.example" for mail in got)
    assert "42.50 USD" in next(mail.text for mail in got if "paid" in mail.subject)
    assert len(server.to(contact)) == 2
    rows = await asyncio.to_thread(lambda: service.log_of(partner_id=partner_id))
    assert {row["status"] for row in rows} == {"sent"} and len(rows) == 4

    records = await read_envelopes(bootstrap, NOTIFICATIONS.name, 4)
    published = [envelope.payload for _, envelope in records if isinstance(envelope.payload, NotificationSent)
                 and envelope.payload.partner_id == partner_id]
    assert len(published) == 4
    paid_to_email = [p for p in published
                     if p.template == "statement_paid" and p.recipient == recipient_sha256(email)]
    assert len(paid_to_email) == 1 and paid_to_email[0].source_event_id == paid.event_id
    assert email not in str([p.model_dump() for p in published])  # only the hash travels


async def test_verdicts_and_a_paused_offer_reach_who_they_concern_and_an_opt_out_is_kept(
        service: RunningNotifications, smtp: tuple[ScriptedSmtp, Path], log: Publisher) -> None:
    server, _ = smtp
    offer_id, applicant, opted_out = new_id("o"), new_id("p"), new_id("p")
    async with httpx.AsyncClient(base_url=service.base_url, headers=ADMIN) as client:
        put = await client.put(f"/v1/partners/{opted_out}/notification-preferences",
                               json={"opted_out": ["offer_paused"]})
        assert put.status_code == 200 and put.json()["opted_out"] == ["offer_paused"]
        refused = await client.put(f"/v1/partners/{opted_out}/notification-preferences",
                                   json={"opted_out": ["statement_paid"]})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "opted_out"
    for record in (offer(offer_id, "Spring <sale>"), partner(applicant, f"{applicant}@a.example"),
                   partner(opted_out, f"{opted_out}@b.example"),
                   relationship(offer_id, applicant, approved=False, application=True),
                   relationship(offer_id, applicant, approved=True),
                   relationship(offer_id, opted_out, approved=False, application=True),
                   relationship(offer_id, opted_out, approved=True)):
        await log.publish(record)
    # Both approvals applied (each told), then the pause: the log orders only per key, and
    # a pause is told to the partners approved on the offer as far as the service has read.
    await eventually(lambda: service.ended(1, partner_id=applicant), timeout=30)
    await eventually(lambda: service.ended(1, partner_id=opted_out), timeout=30)
    await log.publish(offer_status(offer_id, "paused"))
    await eventually(lambda: service.ended(2, partner_id=applicant), timeout=30)
    await eventually(lambda: service.ended(2, partner_id=opted_out), timeout=30)

    subjects = sorted(mail.subject for mail in server.to(f"{applicant}@a.example"))
    assert subjects == ["Spring <sale> is paused", "You are approved to run Spring <sale>"]
    assert [mail.subject for mail in server.to(f"{opted_out}@b.example")] == [
        "You are approved to run Spring <sale>"]
    rows = await asyncio.to_thread(lambda: service.log_of(partner_id=opted_out))
    [skipped] = [row for row in rows if row["template"] == "offer_paused"]
    assert skipped["status"] == "skipped" and skipped["last_error"] == "opted_out"
    told = [mail for mail in server.to(STAFF) if applicant in mail.text]
    assert [mail.subject for mail in told] == [f"Partner {applicant} applied to run Spring <sale>"]


async def test_a_message_on_request_is_sent_once_per_key_and_refused_clearly_otherwise(
        service: RunningNotifications, smtp: tuple[ScriptedSmtp, Path]) -> None:
    server, _ = smtp
    to = f"{new_id('u')}@signup.example"
    body = {"template": "verify_email", "to": to, "data": {"link": "https://portal.example/v?t=SECRET-1"}}
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        first = await client.post("/v1/messages", json=body, headers={**SENDER, "Idempotency-Key": "k1"})
        again = await client.post("/v1/messages", json=body,
                                  headers={**SENDER, "Idempotency-Key": "k1"})
        assert first.status_code == again.status_code == 202
        [queued], [found] = first.json()["messages"], again.json()["messages"]
        assert queued["notification_id"] == found["notification_id"]
        other = await client.post("/v1/messages", headers={**SENDER, "Idempotency-Key": "k1"},
                                  json={**body, "data": {"link": "https://portal.example/v?t=OTHER"}})
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
        cases = [({**body, "template": "statement_paid"}, "template"), ({**body, "data": {}}, "data.link"),
                 ({**body, "to": "nobody"}, "to")]
        for bad, field in cases:
            answer = await client.post("/v1/messages", json=bad, headers={**SENDER, "Idempotency-Key": "k2"})
            assert answer.status_code == 422 and answer.json()["error"]["field"] == field, answer.text
        no_key = await client.post("/v1/messages", json=body, headers=SENDER)
        assert no_key.status_code == 422
        assert (await client.post("/v1/messages", json=body)).status_code == 401
        log_read = await client.get("/v1/notifications", headers=SENDER)
        assert log_read.status_code == 403 and log_read.json()["error"]["code"] == "forbidden_scope"
    await eventually(lambda: server.to(to), timeout=20)
    await asyncio.sleep(0.5)
    [mail] = server.to(to)
    assert "SECRET-1" in mail.text
    [row] = await asyncio.to_thread(lambda: service.log_of(recipient=to.upper()))
    assert row["status"] == "sent" and row["source"] == "api:sender:k1" and "SECRET" not in str(row)


async def test_dead_letters_make_one_digest_per_topic_per_hour_for_staff(
        service: RunningNotifications, smtp: tuple[ScriptedSmtp, Path], log: Publisher) -> None:
    server, _ = smtp
    for n in range(3):
        reason = f"unprocessable: bad {n % 2}".encode()
        await log.send_raw(PAYOUTS.dlq, b"not json", b"k", [("dlq.reason", reason)])
    digests = await eventually(lambda: [m for m in server.to(STAFF) if PAYOUTS.dlq in m.subject],
                               timeout=30)
    assert digests[0].subject.endswith(f"dead letter(s) waiting on {PAYOUTS.dlq}")
    assert "unprocessable: bad 0" in digests[0].text
    await log.send_raw(PAYOUTS.dlq, b"more", b"k", [("dlq.reason", b"later")])
    assert await eventually(lambda: counted(service) == 4, timeout=20)  # every letter counted ...
    await asyncio.sleep(1)
    assert len([m for m in server.to(STAFF) if PAYOUTS.dlq in m.subject]) == 1  # ... the next in an hour
    sent = await asyncio.to_thread(lambda: service.log_of(status="sent"))
    [row] = [r for r in sent if r["source"] == f"digest:{PAYOUTS.dlq}:1"]
    assert row["recipient"] == STAFF


def counted(service: RunningNotifications) -> int:
    assert service.store is not None
    rows = service.store.query(sql.SQL("SELECT total FROM {} WHERE topic = %s").format(
        service.store.table("dead_letter_counts")), (PAYOUTS.dlq,))
    return int(rows[0]["total"]) if rows else 0


async def test_the_delivery_log_pages_and_refuses_bad_cursors(service: RunningNotifications) -> None:
    async with httpx.AsyncClient(base_url=service.base_url, headers=ADMIN) as client:
        first = (await client.get("/v1/notifications", params={"limit": 2})).json()
        assert len(first["notifications"]) == 2 and first["next"]
        second = (await client.get("/v1/notifications", params={"limit": 2, "after": first["next"]})).json()
        seen = {n["notification_id"] for n in first["notifications"]}
        assert not seen & {n["notification_id"] for n in second["notifications"]}
        bad = await client.get("/v1/notifications", params={"after": "nope"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "after"
        caught = (await client.get("/v1/mail")).json()
        assert caught == {"catching": False, "mail": [], "next": None}
