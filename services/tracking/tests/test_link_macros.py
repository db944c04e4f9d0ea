"""Macros in destination URLs: the click's identity, URL-encoded, in one pass."""

from __future__ import annotations

import re

from afflux_tracking.domain.links import (
    Subs,
    click_macros,
    fill_macros,
    new_transaction_id,
    parse_transaction_id,
)

TID = "0123456789abcdef0123456789abcdef"
NO_SUBS = Subs()


def filled(template: str, subs: Subs = NO_SUBS, offer_id: str = "o-1", partner_id: str = "p-1") -> str:
    return fill_macros(template, click_macros(TID, offer_id, partner_id, subs))


def test_click_identity_macros_are_filled() -> None:
    url = filled("https://shop.example/?tid={transaction_id}&o={offer_id}&p={partner_id}")
    assert url == f"https://shop.example/?tid={TID}&o=o-1&p=p-1"


def test_subs_are_url_encoded_so_they_cannot_add_parameters() -> None:
    subs = Subs(sub1="summer sale", sub2="a&b=c", sub3="x/y?z#w", sub4="100%")
    url = filled("https://shop.example/?s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}", subs)
    assert url == "https://shop.example/?s1=summer%20sale&s2=a%26b%3Dc&s3=x%2Fy%3Fz%23w&s4=100%25"


def test_unicode_subs_are_utf8_percent_encoded() -> None:
    assert filled("https://shop.example/?s={sub1}", Subs(sub1="café ☕")) == (
        "https://shop.example/?s=caf%C3%A9%20%E2%98%95"
    )


def test_missing_subs_fill_in_as_empty() -> None:
    url = filled("https://shop.example/?s1={sub1}&s2={sub2}&s5={sub5}", Subs(sub2="b"))
    assert url == "https://shop.example/?s1=&s2=b&s5="


def test_a_macro_used_twice_is_filled_twice() -> None:
    assert filled("https://x.example/{sub1}/?again={sub1}", Subs(sub1="k")) == "https://x.example/k/?again=k"


def test_a_sub_that_looks_like_a_macro_is_not_expanded() -> None:
    url = filled("https://shop.example/?s={sub1}&t={transaction_id}", Subs(sub1="{transaction_id}"))
    assert url == f"https://shop.example/?s=%7Btransaction_id%7D&t={TID}"


def test_ids_in_the_link_are_encoded_too() -> None:
    assert filled("https://x.example/?o={offer_id}", offer_id="a b&c") == "https://x.example/?o=a%20b%26c"


def test_template_without_macros_is_kept_and_made_header_safe() -> None:
    assert filled("https://shop.example/a-b_c.d~e?x=1&y=%20") == "https://shop.example/a-b_c.d~e?x=1&y=%20"
    assert filled("https://shop.example/über page?{unknown}") == (
        "https://shop.example/%C3%BCber%20page?%7Bunknown%7D"
    )


def test_transaction_ids_are_32_random_hex_characters_then_the_offer_and_unique() -> None:
    ids = {new_transaction_id("0f1e2d3c") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}-0f1e2d3c", tid) for tid in ids)
    assert all(parse_transaction_id(tid) == (tid, "0f1e2d3c") for tid in ids)


def test_an_offer_id_that_cannot_travel_in_a_transaction_id_leaves_the_bare_hex() -> None:
    tid = new_transaction_id("offer with spaces")
    assert re.fullmatch(r"[0-9a-f]{32}", tid)
    assert parse_transaction_id(tid) == (tid, None)
    assert parse_transaction_id(tid.upper()) == (tid, None)
    assert parse_transaction_id("zz" + tid[2:]) is None
