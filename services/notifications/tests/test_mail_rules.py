"""The domain's rules without I/O: who gets what, opt-outs, the at-most-once decisions,
retries, dead-letter digests; and every template renders from the data its kind names."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from afflux_notifications.adapters.smtp import InvalidSmtpUrl, SmtpServer
from afflux_notifications.adapters.templates import JinjaRenderer
from afflux_notifications.application.sending import RenderError
from afflux_notifications.domain.addresses import distinct_sendable, sendable
from afflux_notifications.domain.catalogue import KINDS, OPTIONAL_KINDS, MissingData, api_kind, check_data
from afflux_notifications.domain.delivery import Attempt, RetryPolicy, Stage, Status, after
from afflux_notifications.domain.digests import digest_due, merged
from afflux_notifications.domain.mailing import OPTED_OUT, PartnerCard, to_caller, to_partner, to_staff
from afflux_notifications.domain.news import application_verdict, paused_now, relationship_verdict

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(first=5, cap=60, give_up_after=3600)
PARTNER = PartnerCard("p1", "Creator", "c@p1.example", ("Ops@P1.example ", "c@P1.example", "not an address"))


def test_a_partner_is_written_to_at_each_sendable_address_once() -> None:
    mails = to_partner("statement_paid", PARTNER, (), {"statement_id": "st1"}, source="event:e1")
    assert [mail.recipient for mail in mails] == ["c@p1.example", "Ops@P1.example"]
    assert {mail.data["partner_name"] for mail in mails} == {"Creator"}
    assert len({mail.notification_id for mail in mails}) == 2


def test_the_same_news_to_the_same_recipient_is_the_same_mail_whatever_the_case() -> None:
    first = to_partner("statement_paid", PARTNER, (), {}, source="event:e1")[0]
    again = to_partner("statement_paid", PartnerCard("p1", "Creator", " C@P1.EXAMPLE"), (), {},
                       source="event:e1")[0]
    other_news = to_partner("statement_paid", PARTNER, (), {}, source="event:e2")[0]
    other_kind = to_partner("statement_issued", PARTNER, (), {}, source="event:e1")[0]
    assert first.notification_id == again.notification_id
    assert len({first.notification_id, other_news.notification_id, other_kind.notification_id}) == 3


def test_an_opt_out_skips_news_but_never_a_transactional_mail() -> None:
    assert OPTIONAL_KINDS == ("offer_paused", "postback_host_paused")
    paused = to_partner("offer_paused", PARTNER, {"offer_paused"}, {}, source="event:e1")
    assert {mail.skipped for mail in paused} == {OPTED_OUT}
    paid = to_partner("statement_paid", PARTNER, {"statement_paid", "offer_paused"}, {}, source="event:e1")
    assert {mail.skipped for mail in paid} == {None}


def test_staff_and_callers_get_mail_only_at_sendable_addresses() -> None:
    assert [m.recipient for m in to_staff("staff_dead_letters", ["a@x.example", "A@x.example ", "bad"], {},
                                          source="digest:t:1")] == ["a@x.example"]
    assert to_staff("staff_dead_letters", [], {}, source="digest:t:1") == []
    callers = to_caller("verify_email", ["u@localhost"], {}, source="api:g:k")
    assert [m.recipient for m in callers] == ["u@localhost"]


@pytest.mark.parametrize("address", ["a@b.example", "first.last+tag@sub.domain.example", "x@localhost"])
def test_sendable_addresses(address: str) -> None:
    assert sendable(address)


@pytest.mark.parametrize("address", ["", "a", "a@b", "a b@c.example", "a@b.example\r\nBcc: x@y.example",
                                     "<a@b.example>", "a@@b.example", "a@b.example,c@d.example"])
def test_addresses_mail_cannot_be_sent_to(address: str) -> None:
    assert not sendable(address)
    assert distinct_sendable([address]) == []


def test_verdicts_come_only_from_a_change() -> None:
    assert relationship_verdict(True, True, False) == "relationship_approved"
    assert relationship_verdict(True, False, False) == "relationship_declined"
    assert relationship_verdict(True, False, True) is None  # still an application
    assert relationship_verdict(False, True, False) is None  # approved without applying: no verdict
    assert application_verdict("pending", "active") == "application_approved"
    assert application_verdict("pending", "rejected") == "application_declined"
    assert application_verdict("active", "active") is None
    assert application_verdict(None, "active") is None
    assert paused_now("active", "paused")
    assert not paused_now("paused", "paused") and not paused_now(None, "paused")


def test_only_a_reply_to_the_end_of_data_is_sent_and_no_reply_after_handing_over_is_never_retried() -> None:
    assert after(Attempt(Stage.DATA, 250), 1, NOW, NOW, POLICY).status is Status.SENT
    unknown = after(Attempt(Stage.DATA, None, "SMTPServerDisconnected"), 1, NOW, NOW, POLICY)
    assert unknown.status is Status.UNCERTAIN and unknown.retry_at is None
    assert after(Attempt(Stage.DATA, 554, "554 no"), 1, NOW, NOW, POLICY).status is Status.FAILED
    refused = after(Attempt(Stage.RECIPIENT, 550, "550 no such user"), 1, NOW, NOW, POLICY)
    assert refused.status is Status.FAILED


@pytest.mark.parametrize("attempt", [
    Attempt(Stage.CONNECT, None, "ConnectionRefusedError"), Attempt(Stage.CONNECT, 535, "535 auth"),
    Attempt(Stage.SENDER, 451, "451 later"), Attempt(Stage.RECIPIENT, 450, "450 greylisted"),
    Attempt(Stage.DATA, 451, "451 try again"),
], ids=lambda a: f"{a.stage.value}-{a.code}")
def test_anything_before_the_message_is_the_servers_or_a_4xx_is_retried(attempt: Attempt) -> None:
    verdict = after(attempt, 3, NOW, NOW, POLICY)
    assert verdict.status is Status.QUEUED
    assert verdict.retry_at is not None
    assert NOW + timedelta(seconds=10) <= verdict.retry_at <= NOW + timedelta(seconds=20)


def test_retries_back_off_to_a_cap_and_give_up_when_the_time_runs_out() -> None:
    rng = random.Random(7)
    waits = [(POLICY.retry_at(n, NOW, NOW, rng) or NOW) - NOW for n in range(1, 10)]
    assert waits[0] <= timedelta(seconds=5) and all(wait <= timedelta(seconds=60) for wait in waits)
    late = after(Attempt(Stage.CONNECT, None, "refused"), 9, NOW, NOW + timedelta(seconds=3599), POLICY)
    assert late.status is Status.FAILED and "given up" in (late.error or "")


def test_a_dead_letter_digest_goes_at_most_once_a_period_and_only_with_news() -> None:
    hour = timedelta(hours=1)
    assert digest_due(3, None, NOW, hour)
    assert not digest_due(0, None, NOW, hour)
    assert not digest_due(3, NOW - timedelta(minutes=59), NOW, hour)
    assert digest_due(1, NOW - hour, NOW, hour)
    kept = merged({"a": 5}, ["b"] * 3 + ["c", "d", "e", "f", "g"])
    assert kept["a"] == 5 and kept["b"] == 3 and sum(kept.values()) == 13 and len(kept) <= 6


def test_a_message_on_request_names_what_its_template_lacks() -> None:
    kind = api_kind("verify_email")
    check_data(kind, {"link": "https://x.example/v?t=1"})
    with pytest.raises(MissingData) as missing:
        check_data(kind, {"name": "Ann"})
    assert missing.value.name == "link"
    with pytest.raises(ValueError, match="not a message"):
        api_kind("statement_paid")


def sample(name: str) -> dict[str, object]:
    spec = KINDS[name]
    return {field: f"<{field}>" for field in (*spec.fields, *spec.optional_fields)}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_renders_a_subject_a_text_and_an_html_part_from_its_data(name: str) -> None:
    renderer = JinjaRenderer(program_name="Acme Partners", portal_url="https://portal.example")
    full = renderer.render(name, sample(name))
    required = renderer.render(name, {field: f"<{field}>" for field in KINDS[name].fields})
    assert full.subject and "\n" not in full.subject
    assert "Acme Partners" in full.text and "<html" in full.html
    assert "&lt;" in full.html  # data is escaped in HTML, never markup
    assert required.text.strip()


def test_a_template_without_its_data_cannot_render() -> None:
    with pytest.raises(RenderError):
        JinjaRenderer(program_name="x", portal_url="y").render("statement_paid", {"partner_name": "p"})


def test_an_smtp_url_says_how_to_reach_the_server_and_never_sends_a_password_in_clear() -> None:
    plain = SmtpServer.parse("smtp://relay.example")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls, plain.username) == (
        "relay.example", 25, False, False, None)
    upgraded = SmtpServer.parse("smtp://me%40corp:p%40ss%3Aw@relay.example?starttls=true")
    assert (upgraded.port, upgraded.starttls, upgraded.username, upgraded.password) == (
        587, True, "me@corp", "p@ss:w")
    tls = SmtpServer.parse("smtps://u:p@relay.example:2465")
    assert (tls.port, tls.implicit_tls) == (2465, True)
    assert SmtpServer.parse("smtp://u:p@127.0.0.1:2525").username == "u"  # loopback: a local relay
    for bad in ("http://relay.example", "smtp://u:secret@relay.example", "smtps://x?starttls=true",
                "smtp://relay.example?tls=1", "smtp://:25"):
        with pytest.raises(InvalidSmtpUrl) as refused:
            SmtpServer.parse(bad)
        assert "secret" not in str(refused.value)
