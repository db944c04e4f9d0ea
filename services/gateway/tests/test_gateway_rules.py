"""The gateway's pure rules: report windows and figures, how decisions move a conversion
and the figures, the failure throttle, portal sessions and their key rotation, cursors,
the chart, links, visibility and the secrets it refuses to start without."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from afflux_contracts import StatusChange
from afflux_gateway.domain import conversions as rules
from afflux_gateway.domain.access import may_run, may_see, plausible_key, tracking_link
from afflux_gateway.domain.conversions import Conversion, Kind, Move
from afflux_gateway.domain.report import MAX_DAYS, Figures, InvalidReport, cvr, epc, window
from afflux_gateway.entrypoints.chart import DayFigures, daily_chart
from afflux_gateway.entrypoints.present import to_csv
from afflux_gateway.entrypoints.session import SessionKeys, csrf_ok, csrf_token, new_session, seal, unseal
from afflux_gateway.entrypoints.throttle import FailureThrottle, source_of
from afflux_gateway.settings import GatewaySettings, MissingSecret

SECRET = SessionKeys.of("s" * 32)
TODAY = date(2026, 3, 31)
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def test_a_window_is_whole_days_at_midnight_in_its_time_zone() -> None:
    span = window("2026-03-01", "2026-03-02", "Europe/Paris", NOW)
    assert span.start == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert span.end == datetime(2026, 3, 2, 23, tzinfo=UTC)
    assert span.days == [date(2026, 3, 1), date(2026, 3, 2)]


def test_a_window_over_a_daylight_saving_change_keeps_local_midnights() -> None:
    span = window("2026-03-29", "2026-03-29", "Europe/Paris", NOW)  # 23 hours long
    assert (span.end - span.start).total_seconds() == 23 * 3600


def test_the_default_window_is_the_last_30_days_in_utc() -> None:
    span = window(None, None, None, NOW)
    assert (span.first, span.last, span.zone.key) == (date(2026, 3, 2), TODAY, "UTC")


def test_the_default_window_ends_on_today_in_the_report_s_zone() -> None:
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # already April 1st in Paris
    assert window(None, None, "Europe/Paris", late).last == date(2026, 4, 1)
    assert window(None, None, "America/New_York", late).last == TODAY


@pytest.mark.parametrize(
    ("first", "last", "tz", "field"),
    [
        ("2026-03-05", "2026-03-01", None, "from"),
        ("03/01/2026", None, None, "from"),
        (None, "tomorrow", None, "to"),
        (None, None, "Nowhere/City", "tz"),
        (None, None, "../etc", "tz"),
        ("2020-01-01", "2026-01-01", None, "from"),
    ],
)
def test_bad_windows_name_their_field(
    first: str | None, last: str | None, tz: str | None, field: str
) -> None:
    with pytest.raises(InvalidReport) as refused:
        window(first, last, tz, NOW)
    assert refused.value.field == field


def test_a_window_covers_at_most_max_days() -> None:
    first = TODAY - timedelta(days=MAX_DAYS - 1)
    assert len(window(first.isoformat(), None, None, NOW).days) == MAX_DAYS
    with pytest.raises(InvalidReport):
        window((first - timedelta(days=1)).isoformat(), None, None, NOW)


def test_cvr_and_epc_are_per_click_and_exact() -> None:
    figures = Figures(clicks=3, unique_clicks=2, conversions=2, payout=Decimal("13.60"))
    assert (cvr(figures), epc(figures)) == (Decimal("66.67"), Decimal("4.5333"))
    assert (cvr(Figures()), epc(Figures())) == (Decimal("0.00"), Decimal("0.0000"))
    assert Figures(1, 1, 0, Decimal("1")) + Figures(2, 0, 1, Decimal("0.5")) == Figures(
        3, 1, 1, Decimal("1.5")
    )


def test_a_source_is_refused_after_too_many_failures_until_they_leave_the_window() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, period=60, clock=lambda: now[0])
    guesser = source_of("10.0.0.1", "afx_live_guess")
    for _ in range(3):
        assert throttle.retry_after(guesser) is None
        throttle.failed(guesser)
        now[0] += 1
    assert throttle.retry_after(guesser) == 57
    assert throttle.retry_after(source_of("10.0.0.2", "afx_live_guess")) is None, "another address"
    assert throttle.retry_after(source_of("10.0.0.1", "afx_live_Zx9q")) is None, "another key's prefix"
    now[0] = 60.5
    assert throttle.retry_after(guesser) is None, "the oldest failure left the window"


def test_a_source_is_the_address_and_the_keys_prefix_only() -> None:
    assert source_of("10.0.0.1", "afx_live_abcdef") == source_of("10.0.0.1", "afx_live_abcXYZ")
    assert source_of("10.0.0.1", None) == source_of("10.0.0.1", "")
    assert "\n" not in source_of("10.0.0.1", "afx\n\u2603")


def test_the_throttle_forgets_the_oldest_sources_first() -> None:
    throttle = FailureThrottle(limit=1, period=60, clock=lambda: 0.0, max_sources=2)
    for source in ("a", "b", "c"):
        throttle.failed(source)
    assert throttle.retry_after("a") is None and throttle.retry_after("c") == 60


def test_a_session_round_trips_and_refuses_tampering_and_expiry() -> None:
    session = new_session("p-1", "key_1", now=1000)
    cookie = seal(session, SECRET)
    assert unseal(cookie, SECRET, now=1001) == session
    assert unseal(cookie, SessionKeys.of("x" * 32), now=1001) is None
    payload, signature = cookie.split(".")
    assert unseal(f"{payload}x.{signature}", SECRET, now=1001) is None
    assert unseal(f"{payload}", SECRET, now=1001) is None
    assert unseal(cookie + "x" * 2000, SECRET, now=1001) is None
    assert unseal(cookie, SECRET, now=session.expires) is None


def test_sessions_and_forms_signed_before_a_key_rotation_still_work_until_the_old_key_is_dropped() -> None:
    before = SessionKeys.of("old-secret-" + "o" * 32)
    rotated = SessionKeys.of("new-secret-" + "n" * 32, previous="old-secret-" + "o" * 32)
    after = SessionKeys.of("new-secret-" + "n" * 32)
    session = new_session("p-1", "key_1", now=1000)
    cookie, token = seal(session, before), csrf_token(session.nonce, before)
    assert unseal(cookie, rotated, now=1001) == session and csrf_ok(token, session.nonce, rotated)
    assert unseal(seal(session, rotated), after, now=1001) == session, (
        "new sessions are signed with the new key"
    )
    assert unseal(cookie, after, now=1001) is None and not csrf_ok(token, session.nonce, after)


def test_a_csrf_token_belongs_to_its_session() -> None:
    one, other = new_session("p", "k", 0), new_session("p", "k", 0)
    token = csrf_token(one.nonce, SECRET)
    assert csrf_ok(token, one.nonce, SECRET)
    assert not csrf_ok(token, other.nonce, SECRET)
    assert not csrf_ok(None, one.nonce, SECRET)


def test_the_chart_draws_a_bar_per_day_per_figure_and_escapes_its_text() -> None:
    days = [DayFigures(date(2026, 3, n), n, n // 2, Decimal(n)) for n in range(1, 8)]
    svg = daily_chart(days, "<USD>")
    assert svg.startswith("<svg") and svg.count("<rect") == 3 * 7
    assert "&lt;USD&gt;" in svg and "<USD>" not in svg
    assert "max 7" in svg and "2026-03-07" in svg


def test_links_carry_the_given_subs_encoded() -> None:
    url = tracking_link("https://t.example/", "o1", "p1", {"sub2": "a b&c", "sub1": "", "sub9": "x"})
    assert url == "https://t.example/c/o1/p1?sub2=a+b%26c"
    assert tracking_link("https://t.example", "o1", "p1", {}) == "https://t.example/c/o1/p1"


def test_visibility_rules() -> None:
    assert may_see("public", None) and not may_see("public", False)
    assert may_see("require_approval", None) and not may_run("require_approval", None)
    assert not may_see("private", None) and may_see("private", True) and may_run("private", True)


def test_only_plausible_keys_are_looked_up() -> None:
    assert plausible_key("afx_live_abc")
    assert (
        not plausible_key("sk_live_abc")
        and not plausible_key("afx_" + "é")
        and not plausible_key("afx_" * 60)
    )


def test_csv_cells_that_look_like_formulas_are_neutralised_but_negative_amounts_are_not() -> None:
    text = to_csv(["a", "b"], [{"a": "=1+1", "b": "-5.00"}, {"a": "@x", "b": None}])
    assert text.splitlines() == ["a,b", "'=1+1,-5.00", "'@x,"]


def test_applications_go_to_the_partners_port_unless_a_url_is_given() -> None:
    base = {"DATABASE_URL": "postgresql://x/y", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
    assert GatewaySettings(**base).partners_api == "http://127.0.0.1:8001"
    assert GatewaySettings(**base, AFFLUX_PARTNERS_PORT=9101).partners_api == "http://127.0.0.1:9101"
    given = GatewaySettings(**base, AFFLUX_PARTNERS_PORT=9101, AFFLUX_PARTNERS_URL="http://partners.internal")
    assert given.partners_api == "http://partners.internal"


BASE = {"DATABASE_URL": "postgresql://x/y", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}


def test_the_portal_refuses_to_start_without_its_session_secret() -> None:
    with pytest.raises(MissingSecret, match="AFFLUX_GATEWAY_SESSION_SECRET is not set"):
        GatewaySettings(**BASE).session_keys()
    with pytest.raises(MissingSecret, match="shorter"):
        GatewaySettings(**BASE, AFFLUX_GATEWAY_SESSION_SECRET="short").session_keys()
    with pytest.raises(MissingSecret, match="PREVIOUS is shorter"):
        GatewaySettings(
            **BASE, AFFLUX_GATEWAY_SESSION_SECRET="n" * 32, AFFLUX_GATEWAY_SESSION_SECRET_PREVIOUS="old"
        ).session_keys()
    keys = GatewaySettings(
        **BASE, AFFLUX_GATEWAY_SESSION_SECRET="n" * 32, AFFLUX_GATEWAY_SESSION_SECRET_PREVIOUS="o" * 32
    ).session_keys()
    assert keys.current != keys.previous and len(keys.verifying) == 2


def test_the_gateway_refuses_to_start_without_its_own_service_token() -> None:
    with pytest.raises(MissingSecret, match="AFFLUX_GATEWAY_SERVICE_TOKEN"):
        GatewaySettings(**BASE).own_token()
    assert GatewaySettings(**BASE, AFFLUX_GATEWAY_SERVICE_TOKEN="t" * 40).own_token() == "t" * 40


AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


def conversion(
    status: str = "approved", payout: str | None = "5.00", reason: str | None = None
) -> Conversion:
    return Conversion(
        "c-1",
        "p-1",
        "o-1",
        "t-1",
        "sale",
        Kind.CONVERSION,
        status,
        reason,
        Decimal(payout) if payout else None,
        Decimal("8.00") if payout else None,
        "USD",
        AT,
        ("mail", "", "", "", ""),
    )


def move(conversions: int, payout: str, revenue: str) -> Move:
    return Move(
        "p-1",
        "o-1",
        datetime(2026, 3, 2, 10, tzinfo=UTC),
        ("mail", "", "", "", ""),
        conversions,
        Decimal(payout),
        Decimal(revenue),
    )


def test_an_attributed_conversion_is_counted_once_however_often_it_is_published() -> None:
    shown, moved = rules.attributed(None, conversion())
    assert shown == conversion() and moved == move(1, "5.00", "8.00")
    assert rules.attributed(conversion(), conversion()) == (None, None)


def test_a_rejected_conversion_approved_on_appeal_is_shown_attributed_and_counted() -> None:
    rejected = conversion("rejected", None, "fraud_too_fast")
    assert rules.rejected(None, rejected) == (rejected, None)
    shown, moved = rules.attributed(rejected, conversion())
    assert shown is not None and shown.status == "approved" and moved == move(1, "5.00", "8.00")
    assert rules.rejected(conversion(), rejected) == (None, None), "a late rejection changes nothing"


def test_a_review_moves_the_figures_by_what_it_changes() -> None:
    approved = conversion()
    reversed_, moved = rules.reviewed(approved, StatusChange.REVERSED, Decimal(0), "refund")
    assert reversed_ is not None and (reversed_.status, reversed_.reason) == ("reversed", "refund")
    assert moved == move(-1, "-5.00", "-8.00")
    assert rules.reviewed(reversed_, StatusChange.ADJUSTED, Decimal(1), None) == (None, None)
    adjusted, moved = rules.reviewed(conversion("pending"), StatusChange.ADJUSTED, Decimal("4.25"), None)
    assert adjusted is not None and (adjusted.status, adjusted.payout) == ("approved", Decimal("4.25"))
    assert moved == move(0, "-0.75", "0")
    approved_now, moved = rules.reviewed(conversion("pending"), StatusChange.APPROVED, Decimal("5.00"), None)
    assert approved_now is not None and approved_now.status == "approved" and moved is None


def test_priced_traffic_adds_its_payout_once_and_no_conversion() -> None:
    click = Conversion(
        "click:t-1",
        "p-1",
        "o-1",
        "t-1",
        None,
        Kind.CPC,
        "approved",
        None,
        Decimal("0.25"),
        Decimal("0.40"),
        "USD",
        AT,
        ("mail", "", "", "", ""),
    )
    shown, moved = rules.priced(None, click)
    assert shown == click and moved == move(0, "0.25", "0.40")
    assert rules.priced(click, click) == (None, None)


def test_the_throttle_sees_the_client_behind_a_trusted_balancer_and_only_there() -> None:
    from starlette.requests import Request

    from afflux_gateway.entrypoints.auth import Guard
    from afflux_plumbing.http import TrustedProxies

    def through(peer: str) -> Request:
        return Request(
            {"type": "http", "client": (peer, 4711), "headers": [(b"x-forwarded-for", b"203.0.113.7")]}
        )

    behind = Guard(None, FailureThrottle(), TrustedProxies.parse("10.0.0.0/8"))  # type: ignore[arg-type]
    assert behind.address(through("10.1.2.3")) == "203.0.113.7"
    assert behind.address(through("198.51.100.9")) == "198.51.100.9", "a caller's own header proves nothing"
    assert Guard(None, FailureThrottle()).address(through("10.1.2.3")) == "10.1.2.3"  # type: ignore[arg-type]
