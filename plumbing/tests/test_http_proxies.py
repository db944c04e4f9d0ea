"""The client's address behind proxies (``http_proxies``): the TCP peer unless it is a
trusted proxy, then the right-most untrusted address of the one header the proxies
write. Pure: ASGI scopes in, addresses out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from afflux_plumbing.http_proxies import NO_PROXIES, TrustedProxies, client_address, client_scheme
from afflux_plumbing.settings import ServiceSettings

BALANCER = "10.0.0.5"
PROXIES = TrustedProxies.parse("10.0.0.0/24, 192.168.1.1")


def scope(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {"client": (peer, 40000) if peer else None, "scheme": scheme,
            "headers": [(name.encode(), value.encode()) for name, value in headers]}


def test_with_no_trusted_proxies_the_client_is_the_peer_whatever_it_says() -> None:
    said = scope("127.0.0.1", ("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9"))
    assert client_address(said, NO_PROXIES) == "127.0.0.1"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    said = scope("198.51.100.7", ("x-forwarded-for", "203.0.113.9"))
    assert client_address(said, PROXIES) == "198.51.100.7"


def test_behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_hop() -> None:
    # The caller sent "1.1.1.1" itself; the balancer appended the caller's real address.
    said = scope(BALANCER, ("x-forwarded-for", "1.1.1.1, 203.0.113.9"))
    assert client_address(said, PROXIES) == "203.0.113.9"
    through_two = scope(BALANCER, ("x-forwarded-for", "1.1.1.1, 203.0.113.9, 192.168.1.1"))
    assert client_address(through_two, PROXIES) == "203.0.113.9"


def test_header_lines_are_one_list_and_hops_may_carry_ports_and_brackets() -> None:
    said = scope(BALANCER, ("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "[2001:db8::7]:443"))
    assert client_address(said, PROXIES) == "2001:db8::7"
    assert client_address(scope(BALANCER, ("x-forwarded-for", "203.0.113.9:5123")), PROXIES) == "203.0.113.9"


def test_a_trusted_proxy_that_forwards_nothing_is_the_client_and_all_trusted_hops_give_the_first() -> None:
    assert client_address(scope(BALANCER), PROXIES) == BALANCER
    assert client_address(scope(BALANCER, ("x-forwarded-for", "10.0.0.9, 10.0.0.8")), PROXIES) == "10.0.0.9"


def test_an_unreadable_forwarded_hop_is_an_unknown_client_never_the_proxy() -> None:
    assert client_address(scope(BALANCER, ("x-forwarded-for", "1.1.1.1, unknown")), PROXIES) is None


def test_forwarded_is_read_only_where_the_proxies_write_it() -> None:
    rfc = TrustedProxies.parse("10.0.0.0/24", "Forwarded")
    said = scope(BALANCER, ("forwarded", 'for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https'),
                 ("x-forwarded-for", "198.51.100.1"))
    assert client_address(said, rfc) == "2001:db8:cafe::17"
    assert client_scheme(said, rfc) == "https"
    assert client_address(said, PROXIES) == "198.51.100.1"  # these proxies write X-Forwarded-For
    assert client_address(scope(BALANCER, ("forwarded", "for=_hidden")), rfc) is None


def test_the_scheme_is_the_proxys_word_only_from_a_trusted_proxy() -> None:
    assert client_scheme(scope(BALANCER, ("x-forwarded-proto", "https")), PROXIES) == "https"
    assert client_scheme(scope("198.51.100.7", ("x-forwarded-proto", "https")), PROXIES) == "http"
    assert client_scheme(scope(BALANCER, ("x-forwarded-proto", "gopher")), PROXIES) == "http"


def test_ipv4_mapped_peers_are_their_ipv4_address() -> None:
    mapped = scope("::ffff:10.0.0.5", ("x-forwarded-for", "203.0.113.9"))
    assert client_address(mapped, PROXIES) == "203.0.113.9"


@pytest.mark.parametrize(("networks", "header", "problem"), [
    ("10.0.0.0/33", "x-forwarded-for", "10.0.0.0/33"),
    ("proxy.internal", "x-forwarded-for", "proxy.internal"),
    ("10.0.0.1", "x-real-ip", "AFFLUX_TRUSTED_PROXY_HEADER"),
])
def test_a_bad_setting_is_refused_naming_it(networks: str, header: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        TrustedProxies.parse(networks, header)


def test_a_service_with_a_bad_trusted_proxy_setting_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    class Some(ServiceSettings):
        port: int = 1
        db_schema: str = "some"

    monkeypatch.setenv("AFFLUX_TRUSTED_PROXIES", "10.0.0.0/8 lb.internal")
    with pytest.raises(ValidationError, match=r"lb\.internal"):
        Some(database_url="postgresql://x", kafka_bootstrap_servers="k:9092")
    monkeypatch.setenv("AFFLUX_TRUSTED_PROXIES", "10.0.0.0/8,192.168.0.0/16")
    proxies = Some(database_url="postgresql://x", kafka_bootstrap_servers="k:9092").proxies
    assert (len(proxies.networks), proxies.header) == (2, "x-forwarded-for")
