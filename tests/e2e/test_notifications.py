"""Mail over real processes: statements issued and paid reach each partner's inbox (the
embedded mail catcher of the notifications service, ``AFFLUX_SMTP_URL`` unset), and a
``kill -9`` of the notifications service in the middle of the stream sends no mail
twice: every mail is caught at most once, and every one recorded ``sent`` exactly once
(one killed while being handed over is ``uncertain``: never sent again)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for

from afflux_infra.platform import Platform

pytestmark = pytest.mark.slow

PARTNERS = 5


def admin_get(platform: Platform, service: str, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{platform.url(service)}{path}", params=params, timeout=10,
                         headers={"Authorization": f"Bearer {platform.admin_token}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def caught(platform: Platform) -> list[dict[str, Any]]:
    mail: list[dict[str, Any]] = admin_get(platform, "notifications", "/v1/mail", limit=500)["mail"]
    return mail


def delivery_log(platform: Platform) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = admin_get(platform, "notifications", "/v1/notifications",
                                           limit=500)["notifications"]
    return rows


def test_statements_paid_are_mailed_once_each_even_after_a_kill_9_mid_stream(platform: Platform) -> None:
    api = AdminApi(platform)
    offer_id = api.create_cps_offer(percent="10")
    partners = {}
    for n in range(PARTNERS):
        email = f"mail-{n}@partners.example"
        partner_id = str(api.post("partners", "/v1/partners", {
            "name": f"Mailed {n}", "email": email,
            "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "0"}})["partner_id"])
        api.approve(offer_id, partner_id)
        transaction_id = follow_tracking_link(api.tracking_link(offer_id, partner_id))
        sale = httpx.post(f"{platform.url('tracking')}/postback", params={
            "transaction_id": transaction_id, "amount": "100.00", "currency": "USD", "order_id": f"o-{n}",
            "token": postback_token(transaction_id)})
        assert sale.status_code == 200, sale.text
        partners[partner_id] = email
    for partner_id in partners:
        wait_for(lambda partner_id=partner_id: api.accrued(partner_id) > 0, timeout=30)
    closed = api.post("payouts", "/v1/statements/close", {"period_end": datetime.now(UTC).isoformat()})
    statements = [s for s in closed["statements"] if s["partner_id"] in partners]
    assert len(statements) == PARTNERS
    for statement in statements:
        api.post("payouts", f"/v1/statements/{statement['statement_id']}/paid", {"reference": "wire"})

    notifications = platform.service("notifications")
    wait_for(lambda: any("is paid" in (mail["subject"] or "") for mail in caught(platform)), timeout=30,
             interval=0.01)
    notifications.kill9()  # mid-stream: some mails sent, some queued or in a conversation
    notifications.start().wait_until("/readyz", 90)

    expected = 2 * PARTNERS  # each partner: its statement issued, and paid
    rows = wait_for(lambda: (found := delivery_log(platform)) and sum(
        row["status"] in ("sent", "uncertain") for row in found) >= expected and found, timeout=60)
    time.sleep(1.0)  # anything sent twice would have arrived by now
    mail = caught(platform)
    copies = Counter((tuple(m["recipients"]), m["subject"]) for m in mail)
    assert max(copies.values()) == 1, copies.most_common(3)
    statuses = Counter(row["status"] for row in rows)
    assert set(statuses) <= {"sent", "uncertain"} and statuses["sent"] + statuses["uncertain"] == expected
    sent = [row for row in rows if row["status"] == "sent"]
    for row in sent:
        assert copies[((row["recipient"],), row["subject"])] == 1, row
    paid_to = Counter(m["recipients"][0] for m in mail if "is paid" in (m["subject"] or ""))
    assert set(paid_to) <= set(partners.values()) and set(paid_to.values()) == {1}
    assert len(paid_to) >= PARTNERS - statuses["uncertain"]
