"""Who may see and run what: API key hashing and the offer visibility rules. Pure.

Only a key's SHA-256 travels on the log and sits in the gateway's tables, so the
key is looked up by its hash; the hash found is then compared with the presented
key's in constant time, and the answer to a wrong key never says whether a partner
or key exists.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from afflux_contracts import Visibility

KEY_PREFIX = "afx_"
MAX_KEY_LENGTH = 200


def key_sha256(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_key(api_key: str) -> bool:
    """Shaped like an Afflux key (cheap check before any lookup; says nothing to the caller)."""
    return api_key.startswith(KEY_PREFIX) and len(api_key) <= MAX_KEY_LENGTH and api_key.isascii()


def same_hash(presented: str, stored: str) -> bool:
    return hmac.compare_digest(presented.encode(), stored.encode())


def may_see(visibility: str, approved: bool | None) -> bool:
    """A partner sees public offers (unless refused) and those it is approved for; a
    require-approval offer is listed too, so it can apply; a private one only once approved."""
    if visibility == Visibility.PUBLIC:
        return approved is not False
    if visibility == Visibility.REQUIRE_APPROVAL:
        return True
    return approved is True


def may_run(visibility: str, approved: bool | None) -> bool:
    """Tracking's rule: a public offer unless refused, any other only once approved."""
    if visibility == Visibility.PUBLIC:
        return approved is not False
    return approved is True


SUB_NAMES = ("sub1", "sub2", "sub3", "sub4", "sub5")
MAX_SUB_LENGTH = 500


def tracking_link(tracking_url: str, offer_id: str, partner_id: str, subs: dict[str, str]) -> str:
    """The partner's link to the offer, with the subs it gave (empty ones left out)."""
    return _with_subs(f"{tracking_url.rstrip('/')}/c/{offer_id}/{partner_id}", subs)


def smart_link_url(tracking_url: str, smart_link_id: str, partner_id: str, subs: dict[str, str]) -> str:
    """The partner's link to a smart link (tracking chooses the offer per visitor), with
    the subs it gave."""
    return _with_subs(f"{tracking_url.rstrip('/')}/s/{smart_link_id}/{partner_id}", subs)


def _with_subs(base: str, subs: dict[str, str]) -> str:
    given = [(name, subs[name]) for name in SUB_NAMES if subs.get(name)]
    return f"{base}?{urlencode(given)}" if given else base
