"""One truth for the partner, over real processes: a generated program history played
through the public HTTP contract, after which, for every partner, three answers agree to
the cent: the gateway's ``/v1/me/balance`` (with the partner's key), payouts' balance (with
the admin token), and an independent fold of the log written here in plain Decimal
arithmetic. The gateway's conversions and statements agree with the log too (each with
its status now), and all of it still holds after ``afflux replay payouts --verify``.

A program (hypothesis draws it): one or two partners (minimum payout 0 or 10.00), a CPA,
a CPS (one event held for review) and a CPC offer, and up to eight moves: clicks (from a few
visitors), sales, pending sales, duplicates (rejected by a rule), appeals of those,
approvals, rejections, reversals, adjustments of conversions and of balances, statement
closes and payments. Moves without a target (nothing to reverse yet) do nothing. One
explicit program makes every move at least once, in an order where each has a target (a
reversal after payment, an appeal of a duplicate); two generated ones add variety,
derandomized (``AFFLUX_ONE_TRUTH_EXAMPLES`` for a longer, random run).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from afflux_api import POSTBACK_TOKENS, AdminApi, follow_tracking_link, wait_for
from afflux_log import envelopes_on
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from afflux_contracts import (
    ATTRIBUTION,
    PAYOUTS,
    BalanceAdjusted,
    ClickPriced,
    ConversionAttributed,
    ConversionRejected,
    ConversionStatus,
    ConversionStatusChanged,
    Envelope,
    Event,
    ImpressionsPriced,
    StatementIssued,
    StatementPaid,
    StatementStatus,
    StatusChange,
)
from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("AFFLUX_ONE_TRUTH_EXAMPLES", "2"))
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (Macintosh) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0",
)
SALES = ("20.00", "35.50", "120.00")
"""Sale amounts whose 10 % is an exact number of cents (no rounding rule to agree on)."""
Balances = dict[str, dict[str, Decimal]]

# -- the independent fold of the log ---------------------------------------------------------


@dataclass
class Commission:
    partner_id: str
    currency: str
    amount: Decimal
    status: str
    """approved, pending, rejected (by a rule, earns nothing), reversed (by a review)."""


@dataclass
class Fold:
    """What the log says each partner holds, per currency: earned money (approved
    commissions, priced traffic, adjustments), pending money, statements payable and paid."""

    commissions: dict[str, Commission] = field(default_factory=dict)
    adjustments: dict[str, tuple[str, str, Decimal]] = field(default_factory=dict)
    statements: dict[str, tuple[str, str, str, Decimal]] = field(default_factory=dict)
    """statement_id -> (partner_id, currency, status, total)."""

    def decision(self, p: Event) -> None:
        if isinstance(p, ConversionAttributed):
            known = self.commissions.get(p.conversion_id)
            if known is None or known.status == "rejected":  # new, or credited on appeal
                status = "pending" if p.status is ConversionStatus.PENDING else "approved"
                self.commissions[p.conversion_id] = Commission(
                    p.partner_id, p.payout.currency, p.payout.amount, status
                )
        elif isinstance(p, ConversionRejected) and p.conversion_id not in self.commissions:
            self.commissions[p.conversion_id] = Commission(p.partner_id or "", "", Decimal(0), "rejected")
        elif isinstance(p, ConversionStatusChanged):
            known = self.commissions[p.conversion_id]
            known.amount = p.payout.amount
            known.status = {
                StatusChange.APPROVED: "approved",
                StatusChange.ADJUSTED: "approved",
                StatusChange.REJECTED: "rejected",
                StatusChange.REVERSED: "reversed",
            }[p.status]
        elif isinstance(p, ClickPriced | ImpressionsPriced):
            ref = (
                f"click:{p.transaction_id}"
                if isinstance(p, ClickPriced)
                else f"cpm:{p.offer_id}:{p.partner_id}:{p.block}"
            )
            self.commissions.setdefault(
                ref, Commission(p.partner_id, p.payout.currency, p.payout.amount, "approved")
            )

    def money(self, p: Event) -> None:
        if isinstance(p, BalanceAdjusted):
            self.adjustments.setdefault(p.adjustment_id, (p.partner_id, p.currency, p.amount))
        elif isinstance(p, StatementIssued):
            self.statements.setdefault(p.statement_id, (p.partner_id, p.currency, p.status.value, p.total))
        elif isinstance(p, StatementPaid):
            partner_id, currency, _, total = self.statements[p.statement_id]
            self.statements[p.statement_id] = (partner_id, currency, "paid", total)

    def balances(self, partner_id: str) -> Balances:
        buckets: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for c in self.commissions.values():
            if c.partner_id == partner_id and c.status in ("approved", "pending"):
                buckets[c.currency]["earned" if c.status == "approved" else "pending"] += c.amount
        for owner, currency, amount in self.adjustments.values():
            if owner == partner_id:
                buckets[currency]["earned"] += amount
        for owner, currency, status, total in self.statements.values():
            if owner == partner_id and status in ("payable", "paid"):
                buckets[currency][status] += total
        return normalized(
            {
                currency: {
                    "accrued": b["earned"] - b["payable"] - b["paid"],
                    "pending": b["pending"],
                    "payable": b["payable"],
                    "paid": b["paid"],
                }
                for currency, b in buckets.items()
            }
        )


def normalized(balances: dict[str, dict[str, Any]]) -> Balances:
    """Amounts as Decimal, currencies holding nothing left out (one side may list them)."""
    exact = {
        currency: {bucket: Decimal(amount) for bucket, amount in buckets.items()}
        for currency, buckets in balances.items()
    }
    return {currency: buckets for currency, buckets in exact.items() if any(buckets.values())}


def fold_of_the_log(platform: Platform) -> tuple[Fold, int]:
    """The fold, and how many records it read (to see the log come to rest)."""
    bootstrap = platform.infrastructure.bootstrap_servers

    async def read() -> tuple[list[Envelope[Event]], list[Envelope[Event]]]:
        return await envelopes_on(bootstrap, ATTRIBUTION), await envelopes_on(bootstrap, PAYOUTS)

    decisions, money = asyncio.run(read())
    fold = Fold()
    for envelope in decisions:
        fold.decision(envelope.payload)
    for envelope in money:
        fold.money(envelope.payload)
    return fold, len(decisions) + len(money)


# -- the program --------------------------------------------------------------------------


@dataclass
class Partner:
    partner_id: str
    api_key: str
    links: dict[str, str]
    """offer kind -> the partner's tracking link."""
    orders: list[tuple[str, str]] = field(default_factory=list)
    """(offer kind, order_id) of its sales, to send one again (a duplicate)."""


class Program:
    """An admin, an advertiser and visitors, through the public HTTP contract only."""

    def __init__(self, platform: Platform, minimums: list[str]) -> None:
        self.platform, self.api = platform, AdminApi(platform)
        self.offers = {
            "cpa": self.offer({"type": "cpa", "amount": "3.00"}),
            "cps": self.offer(
                {"type": "cps", "percent": "10"},
                events=[
                    {"name": "conversion", "payout": {"type": "cps", "percent": "10"}},
                    {
                        "name": "reviewed",
                        "payout": {"type": "cps", "percent": "10"},
                        "requires_approval": True,
                    },
                ],
            ),
            "cpc": self.offer({"type": "cpc", "amount": "0.25"}),
        }
        self.partners = [self.partner(minimum) for minimum in minimums]
        self.conversions: dict[str, tuple[Partner, str]] = {}
        """conversion_id -> (partner, its status as attribution last answered)."""

    def offer(self, payout: dict[str, str], **extra: Any) -> str:
        offer = self.api.post(
            "partners",
            "/v1/offers",
            {
                "name": "One truth",
                "currency": "USD",
                "payout": payout,
                "destination_url": "https://shop.example/landing?tid={transaction_id}&s1={sub1}",
                **extra,
            },
        )
        POSTBACK_TOKENS[offer["offer_id"]] = offer["postback_token"]
        return str(offer["offer_id"])

    def partner(self, minimum: str) -> Partner:
        partner_id = str(
            self.api.post(
                "partners",
                "/v1/partners",
                {
                    "name": f"Truth {secrets.token_hex(3)}",
                    "email": f"truth-{secrets.token_hex(3)}@partners.example",
                    "billing": {"currency": "USD", "frequency": "manual", "minimum_payout": minimum},
                },
            )["partner_id"]
        )
        api_key = str(self.api.post("partners", f"/v1/partners/{partner_id}/api-keys", {})["api_key"])
        for offer_id in self.offers.values():
            self.api.approve(offer_id, partner_id)
        return Partner(
            partner_id,
            api_key,
            {kind: self.api.tracking_link(offer_id, partner_id) for kind, offer_id in self.offers.items()},
        )

    # moves: each picks its target among those that fit (``pick`` modulo their number)

    def click(self, partner: Partner, visitor: int) -> None:
        follow_tracking_link_as(partner.links["cpc"], USER_AGENTS[visitor % len(USER_AGENTS)])

    def sale(
        self, partner: Partner, kind: str, amount: str, event: str = "conversion", order_id: str | None = None
    ) -> None:
        transaction_id = follow_tracking_link(partner.links[kind])
        order_id = order_id or f"order-{secrets.token_hex(6)}"
        params = {
            "transaction_id": transaction_id,
            "currency": "USD",
            "event": event,
            "order_id": order_id,
            "token": POSTBACK_TOKENS[self.offers[kind]],
            **({"amount": amount} if kind == "cps" else {}),
        }
        response = httpx.post(f"{self.platform.url('tracking')}/postback", params=params, timeout=10)
        assert response.status_code == 200, response.text
        conversion_id = str(response.json()["conversion_id"])
        partner.orders.append((kind, order_id))
        self.conversions[conversion_id] = (partner, self.decided(conversion_id))

    def duplicate(self, partner: Partner, pick: int) -> None:
        if partner.orders:
            kind, order_id = partner.orders[pick % len(partner.orders)]
            self.sale(partner, kind, "20.00", order_id=order_id)

    def decided(self, conversion_id: str) -> str:
        def status() -> str | None:
            body = self.api.get("attribution", f"/v1/conversions/{conversion_id}").json()
            return str(body["status"]) if "decided_at" in body else None

        return str(wait_for(status, timeout=30))

    def targets(self, *statuses: str) -> list[str]:
        return sorted(cid for cid, (_, status) in self.conversions.items() if status in statuses)

    def review(self, statuses: tuple[str, ...], pick: int, path: str, body: dict[str, str]) -> None:
        """A review of one conversion in ``statuses``; ``rejected`` names those a rule rejected
        (a review's rejection is final: ``reviewed_out``)."""
        targets = self.targets(*statuses)
        if not targets:
            return
        conversion_id = targets[pick % len(targets)]
        with self.api._client("attribution") as client:
            response = client.post(f"/v1/conversions/{conversion_id}/{path}", json=body)
        assert response.status_code in (200, 202), (path, body, response.text)
        status = self.decided(conversion_id)
        self.conversions[conversion_id] = (
            self.conversions[conversion_id][0],
            "reviewed_out" if status == "rejected" else status,
        )

    def adjust_balance(self, partner: Partner, amount: str) -> None:
        self.api.post(
            "payouts",
            f"/v1/partners/{partner.partner_id}/adjustments",
            {"amount": amount, "currency": "USD", "reason": "one truth"},
        )

    def close_and_pay(self, partner: Partner, pay: bool) -> None:
        body = self.api.post(
            "payouts",
            "/v1/statements/close",
            {"period_end": datetime.now(UTC).isoformat(), "partner_id": partner.partner_id},
        )
        for statement in body["statements"]:
            if pay and statement["status"] == StatementStatus.PAYABLE.value:
                self.api.post(
                    "payouts",
                    f"/v1/statements/{statement['statement_id']}/paid",
                    {"reference": f"wire-{secrets.token_hex(3)}"},
                )

    def play(self, move: tuple[str, int, int]) -> None:
        kind, who, pick = move
        partner = self.partners[who % len(self.partners)]
        plays = {
            "click": lambda: self.click(partner, pick),
            "cpa_sale": lambda: self.sale(partner, "cpa", ""),
            "cps_sale": lambda: self.sale(partner, "cps", SALES[pick % len(SALES)]),
            "held_sale": lambda: self.sale(partner, "cps", SALES[pick % len(SALES)], event="reviewed"),
            "duplicate": lambda: self.duplicate(partner, pick),
            "appeal": lambda: self.review(
                ("rejected",), pick, "status", {"status": "approved", "reason": "a real customer"}
            ),
            "approve": lambda: self.review(("pending",), pick, "status", {"status": "approved"}),
            "reject": lambda: self.review(("pending",), pick, "status", {"status": "rejected"}),
            "reverse": lambda: self.review(
                ("approved",), pick, "status", {"status": "reversed", "reason": "refund"}
            ),
            "adjust": lambda: self.review(
                ("approved",), pick, "adjust", {"payout": ("1.25", "4.00")[pick % 2]}
            ),
            "adjust_balance": lambda: self.adjust_balance(partner, ("2.50", "-1.75")[pick % 2]),
            "close": lambda: self.close_and_pay(partner, pay=False),
            "close_and_pay": lambda: self.close_and_pay(partner, pay=True),
        }
        plays[kind]()


def follow_tracking_link_as(link: str, user_agent: str) -> str:
    """A visitor's click (its own user agent: tracking tells visitors apart by it)."""

    def redirected() -> str | None:
        response = httpx.get(link, headers={"User-Agent": user_agent}, follow_redirects=False, timeout=10)
        return response.headers.get("location") if response.status_code == 302 else None

    return str(wait_for(redirected, timeout=30))


MOVES = (
    "click",
    "cpa_sale",
    "cps_sale",
    "held_sale",
    "duplicate",
    "appeal",
    "approve",
    "reject",
    "reverse",
    "adjust",
    "adjust_balance",
    "close",
    "close_and_pay",
)
programs = st.tuples(
    st.lists(st.sampled_from(("0", "10.00")), min_size=1, max_size=2),
    st.lists(st.tuples(st.sampled_from(MOVES), st.integers(0, 1), st.integers(0, 5)), min_size=4, max_size=8),
)

# -- the three answers -----------------------------------------------------------------------


def gateway_view(
    platform: Platform, partner: Partner
) -> tuple[Balances, dict[str, str], dict[str, tuple[str, Decimal]]]:
    with httpx.Client(
        base_url=platform.url("gateway"), headers={"X-Api-Key": partner.api_key}, timeout=10
    ) as me:
        balance = me.get("/v1/me/balance")
        conversions = me.get("/v1/me/conversions", params={"limit": 500})
        statements = me.get("/v1/me/statements")
    assert balance.status_code == 200, balance.text
    assert balance.json()["partner_id"] == partner.partner_id
    shown = {row["conversion_id"]: row["status"] for row in conversions.json()["conversions"]}
    return (
        normalized(balance.json()["balances"]),
        shown,
        {s["statement_id"]: (s["status"], Decimal(s["total"])) for s in statements.json()["statements"]},
    )


def log_view(fold: Fold, partner: Partner) -> tuple[Balances, dict[str, str], dict[str, tuple[str, Decimal]]]:
    conversions = {cid: c.status for cid, c in fold.commissions.items() if c.partner_id == partner.partner_id}
    statements = {
        sid: (status, total)
        for sid, (owner, _, status, total) in fold.statements.items()
        if owner == partner.partner_id
    }
    return fold.balances(partner.partner_id), conversions, statements


def agree(platform: Platform, partners: list[Partner], timeout: float = 45.0) -> None:
    """Once the log has come to rest: for every partner, the gateway, payouts and the log
    say the same (balance to the cent, each conversion's and statement's status)."""
    api = AdminApi(platform)
    deadline = time.monotonic() + timeout
    seen = -1
    while True:
        fold, records = fold_of_the_log(platform)
        differences = []
        for partner in partners:
            ledger = normalized(
                api.get("payouts", f"/v1/partners/{partner.partner_id}/balance").json()["balances"]
            )
            gateway, log = gateway_view(platform, partner), log_view(fold, partner)
            if not (gateway == log and ledger == log[0]):
                differences.append((partner.partner_id, {"gateway": gateway, "payouts": ledger, "log": log}))
        if not differences and records == seen:
            return
        assert time.monotonic() < deadline, f"the answers differ: {differences}"
        seen = records
        time.sleep(0.5)


# -- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def everyone(platform: Platform) -> list[Partner]:
    """Every partner of every example so far: each example checks them all again."""
    wait_for(lambda: httpx.get(f"{platform.url('gateway')}/readyz").status_code == 200)
    return []


def played(
    platform: Platform, everyone: list[Partner], minimums: list[str], moves: list[tuple[str, int, int]]
) -> None:
    started = time.monotonic()
    program = Program(platform, minimums)
    for partner in program.partners:
        wait_for(
            lambda p=partner: (
                httpx.get(f"{platform.url('gateway')}/v1/me", headers={"X-Api-Key": p.api_key}).status_code
                == 200
            ),
            timeout=30,
        )
    set_up = time.monotonic()
    for move in moves:
        program.play(move)
    everyone.extend(program.partners)
    moved = time.monotonic()
    agree(platform, everyone)
    print(
        f"one truth: {len(minimums)} partners set up in {set_up - started:.1f} s, {len(moves)} moves in "
        f"{moved - set_up:.1f} s, agreed in {time.monotonic() - moved:.1f} s: {[m[0] for m in moves]}"
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=EXAMPLES <= 5 or "CI" in os.environ,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
@given(program=programs)
@example(
    program=(
        ["0", "10.00"],
        [
            ("cps_sale", 0, 2),
            ("duplicate", 0, 0),
            ("appeal", 0, 0),
            ("held_sale", 1, 0),
            ("click", 0, 0),
            ("click", 0, 0),
            ("click", 0, 1),
            ("cpa_sale", 1, 0),
            ("close_and_pay", 0, 0),
            ("reverse", 0, 0),
            ("approve", 1, 0),
            ("held_sale", 1, 1),
            ("reject", 1, 0),
            ("adjust", 1, 0),
            ("adjust_balance", 0, 1),
            ("close", 1, 0),
            ("adjust_balance", 1, 0),
            ("close_and_pay", 1, 0),
        ],
    )
)
def test_the_gateway_payouts_and_the_log_agree_for_every_partner(
    platform: Platform, everyone: list[Partner], program: tuple[list[str], list[tuple[str, int, int]]]
) -> None:
    played(platform, everyone, *program)


def test_they_still_agree_after_the_ledger_is_replayed_and_verified(
    platform: Platform, everyone: list[Partner]
) -> None:
    """``afflux replay payouts --verify`` re-derives the ledger from the log and finds it
    equal to the live one; the three answers agree as before."""
    assert everyone, "the generated programs ran first"
    result = subprocess.run(
        [
            str(ROOT / ".tools/bin/uv"),
            "run",
            "--frozen",
            "--no-sync",
            "afflux",
            "replay",
            "payouts",
            "--verify",
        ],
        cwd=ROOT,
        env={**os.environ, **platform.env()},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    agree(platform, everyone)
