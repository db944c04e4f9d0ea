"""The pure rules of a postback: which postback, macros, masking, retries, which addresses
are refused, what goes on the request line."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from afflux_postbacks.adapters.http1 import basic_auth, request_target
from afflux_postbacks.domain.macros import fill, idempotency_key, masked
from afflux_postbacks.domain.retries import AttemptResult, RetryPolicy, retryable
from afflux_postbacks.domain.routing import PostbackConfig, in_force, request, skip_reason
from afflux_postbacks.domain.safety import (
    SPECIAL_PURPOSE_IPV4,
    SPECIAL_PURPOSE_IPV6,
    Refused,
    checked_url,
    first_allowed,
    forbidden,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_macro_values_are_url_encoded_whole_so_a_sub_cannot_add_a_parameter() -> None:
    url = fill("https://t.example/pb?tid={transaction_id}&s1={sub1}&p={payout}&x={unknown}",
               {"transaction_id": "tx 1", "sub1": "a&token=stolen", "payout": "9.60"})
    query = parse_qs(urlsplit(url).query)
    assert query == {"tid": ["tx 1"], "s1": ["a&token=stolen"], "p": ["9.60"], "x": ["{unknown}"]}


def test_a_macro_without_a_value_becomes_empty() -> None:
    assert fill("https://t.example/?s2={sub2}&c={currency}", {"currency": "USD"}) == \
        "https://t.example/?s2=&c=USD"


def test_secret_query_values_and_passwords_are_masked_in_the_log() -> None:
    shown = masked("https://user:hunter2@t.example/pb?cid=c1&token=abc&api_key=k&Secret=s&payout=1")
    assert "hunter2" not in shown and "abc" not in shown and "=k" not in shown and "=s&" not in shown
    assert shown == "https://user:***@t.example/pb?cid=c1&token=***&api_key=***&Secret=***&payout=1"
    assert masked("https://t.example/pb?cid=c1&s1=a%20b+c&e=") == "https://t.example/pb?cid=c1&s1=a%20b+c&e="


def test_idempotency_key_is_stable_per_conversion_and_url() -> None:
    assert idempotency_key("c1", "https://a/") == idempotency_key("c1", "https://a/")
    assert idempotency_key("c1", "https://a/") != idempotency_key("c2", "https://a/")
    assert idempotency_key("c1", "https://a/") != idempotency_key("c1", "https://b/")


@pytest.mark.parametrize(("status", "again"), [(None, True), (500, True), (503, True), (429, True),
                                               (408, True), (404, False), (400, False), (302, False)])
def test_no_answer_5xx_and_not_now_4xx_are_retried_other_answers_are_final(
    status: int | None, again: bool
) -> None:
    assert retryable(status) is again


def test_backoff_doubles_with_jitter_up_to_the_cap_then_gives_up() -> None:
    policy = RetryPolicy(first=5.0, cap=60.0, give_up_after=300.0)
    rng = random.Random(7)
    waits = []
    for attempts in range(1, 6):
        at = policy.next_attempt(attempts, NOW, NOW, rng)
        assert at is not None
        waits.append((at - NOW).total_seconds())
    for attempts, wait in enumerate(waits, start=1):
        full = min(60.0, 5.0 * 2 ** (attempts - 1))
        assert full * 0.5 <= wait <= full
    assert policy.next_attempt(3, NOW, NOW + timedelta(seconds=299), rng) is None


def test_after_a_call_2xx_delivers_a_final_answer_fails_and_the_rest_waits_until_given_up() -> None:
    policy = RetryPolicy(first=5.0, cap=60.0, give_up_after=300.0)
    assert policy.after(AttemptResult(204, None, 0.01), 1, NOW, NOW).status == "delivered"
    refused = policy.after(AttemptResult(None, "refused: x", 0.0, refused=True), 1, NOW, NOW)
    assert (refused.status, refused.error, refused.given_up) == ("failed", "refused: x", False)
    assert policy.after(AttemptResult(404, "HTTP 404", 0.01), 1, NOW, NOW).status == "failed"
    waiting = policy.after(AttemptResult(503, "HTTP 503", 0.01), 2, NOW, NOW)
    assert waiting.status == "pending" and waiting.retry_at is not None and waiting.retry_at > NOW
    late = policy.after(AttemptResult(503, "HTTP 503", 0.01), 7, NOW, NOW + timedelta(seconds=299))
    assert (late.status, late.given_up) == ("failed", True)
    assert late.error == "HTTP 503; still failing after 7 attempts, given up"


@pytest.mark.parametrize(("cidr", "name"), SPECIAL_PURPOSE_IPV4 + SPECIAL_PURPOSE_IPV6)
def test_both_edges_of_every_special_purpose_range_are_refused_by_name(cidr: str, name: str) -> None:
    network = ipaddress.ip_network(cidr)
    for edge in (network[0], network[-1]):
        reason = forbidden(edge)
        assert reason is not None and reason.endswith(")"), edge
        with pytest.raises(Refused):
            first_allowed([str(edge)], allow_private=False)
        assert first_allowed([str(edge)], allow_private=True) == str(edge)


@pytest.mark.parametrize(("inside", "outside"), [
    ("192.0.0.0", "191.255.255.255"), ("192.0.0.255", "192.0.1.0"), ("192.0.0.100", "192.0.1.1"),
    ("2002::", "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"),
    ("10.255.255.255", "11.0.0.0"), ("100.127.255.255", "100.128.0.0"), ("172.31.255.255", "172.32.0.0"),
    ("192.31.196.1", "192.31.197.0"), ("192.88.99.1", "192.88.100.0"), ("3fff::1", "3fff:1000::"),
    ("2620:4f:8000::1", "2620:4f:8001::"), ("2001:1ff:ffff::1", "2001:200::"),
])
def test_a_range_ends_where_the_registry_says_and_the_public_address_beside_it_is_allowed(
    inside: str, outside: str,
) -> None:
    """192.0.0.0/24 outside its /29, 2002::/16, 3fff::/20 and the AS112 and 6to4-relay
    blocks pass ``ipaddress``'s 3.11 flags as global: refused here by the list."""
    assert forbidden(ipaddress.ip_address(inside)) is not None
    assert forbidden(ipaddress.ip_address(outside)) is None


@pytest.mark.parametrize("address", [
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "2002:a00:1::1", "2002:7f00:1::", "2002:a9fe:a9fe::1",             # 6to4 of 10/8, 127/8, metadata
    "64:ff9b::10.0.0.1", "64:ff9b::169.254.169.254", "64:ff9b:1::a00:1",  # NAT64
    "::10.0.0.1", "fec0::1", "::",                                   # IPv4-compatible, site-local
])
def test_translated_forms_of_a_private_address_are_refused(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is not None


def test_a_host_resolving_to_any_private_address_is_refused_whole() -> None:
    assert forbidden(ipaddress.ip_address("93.184.216.34")) is None
    assert forbidden(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")) is None
    with pytest.raises(Refused, match=r"10\.0\.0\.1 is Private-Use \(10\.0\.0\.0/8\)"):
        first_allowed(["93.184.216.34", "10.0.0.1"], allow_private=False)


@pytest.mark.parametrize("url", ["ftp://t.example/x", "file:///etc/passwd", "javascript:alert(1)",
                                 "http:///nohost", "https://t.example:99999/"])
def test_only_http_and_https_urls_with_a_host_are_called(url: str) -> None:
    with pytest.raises(Refused):
        checked_url(url)


RELATIONSHIP = PostbackConfig("https://rel.example/pb?cid={conversion_id}")
GLOBAL = PostbackConfig("https://partner.example/pb?st={status}", "post", status_changes=True)
FACTS = {"kind": "attributed", "conversion_id": "c1", "event": "sale", "payout": "9.60", "currency": "USD",
         "status": "approved", "transaction_id": "t1", "offer_id": "o1", "partner_id": "p1"}


def test_the_relationships_postback_wins_and_the_partners_global_one_stands_in_for_none() -> None:
    assert in_force(RELATIONSHIP, GLOBAL) == RELATIONSHIP
    assert in_force(PostbackConfig(""), GLOBAL) == GLOBAL
    assert in_force(None, GLOBAL) == GLOBAL
    assert in_force(None, PostbackConfig("")) is None and in_force(None, None) is None


def test_news_is_skipped_without_a_postback_for_a_silent_event_or_an_unasked_status_change() -> None:
    changed = {**FACTS, "kind": "status_changed", "status": "reversed"}
    assert skip_reason(FACTS, None, frozenset()) == (
        "neither the relationship nor the partner has a postback URL")
    assert skip_reason(FACTS, RELATIONSHIP, frozenset({"sale"})) == (
        "the offer's event 'sale' does not fire partner postbacks")
    assert skip_reason(changed, RELATIONSHIP, frozenset()) == (
        "the partner's postback does not ask for status changes")
    assert skip_reason(changed, GLOBAL, frozenset()) is None
    assert skip_reason(FACTS, RELATIONSHIP, frozenset({"lead"})) is None


def test_a_post_postback_sends_every_macro_as_json_and_a_get_sends_no_body() -> None:
    sent = request(GLOBAL, {**FACTS, "status": "reversed", "sub1": "a&b", "sub2": ""})
    assert sent.url == "https://partner.example/pb?st=reversed" and sent.method == "post"
    assert sent.body is not None and json.loads(sent.body) == {
        "transaction_id": "t1", "conversion_id": "c1", "event": "sale", "payout": "9.60", "currency": "USD",
        "sub1": "a&b", "sub2": None, "sub3": None, "sub4": None, "sub5": None, "status": "reversed",
        "offer_id": "o1", "partner_id": "p1"}
    plain = request(RELATIONSHIP, FACTS)
    assert plain.url == "https://rel.example/pb?cid=c1" and plain.body is None


def test_the_request_line_keeps_escapes_and_encodes_spaces_non_ascii_and_line_breaks() -> None:
    assert request_target("", "") == "/"
    assert request_target("/p b/ü", "a=%20x&b=c d&e=\r\nX: y") == (
        "/p%20b/%C3%BC?a=%20x&b=c%20d&e=%0D%0AX:%20y")
    assert basic_auth("us%40r", "p%3Ass") == "Basic dXNAcjpwOnNz" and basic_auth(None, "x") is None
