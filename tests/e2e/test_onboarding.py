"""A partner joins by themselves, over real processes: sign-up on the gateway → the
verification mail (the notifications service's embedded catcher: a real SMTP exchange)
→ its link → the application (pending) → staff approve it → the invitation mail →
the password set and the partner signed in to the portal in real Chromium → a sale,
its statement paid → the partner's mail of it. Every mail of the partner arrives
exactly once.

The notifications service is killed (``kill -9``) before the approval and started again
after it: the invitation, which partners asks of it over HTTP, stays owed meanwhile and
arrives once it is back, once. (``test_notifications.py`` proves the same of the mail
notifications makes from the log, killed in the middle of a stream of statements.)
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from afflux_api import AdminApi, follow_tracking_link, postback_token, wait_for

from afflux_infra.platform import Platform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
"""The platform starts inside the timeout too: on a loaded 2-core machine that alone takes minutes."""

EMAIL = "lena@trail-reviews.example"
PASSWORD = "a trail runner's passphrase"
LINK = re.compile(r"https?://\S+?/portal/(?:signup/verify|password)\?token=[\w.\-]+")


def inbox(platform: Platform) -> list[dict[str, Any]]:
    """The mail the catcher received for the partner."""
    response = httpx.get(f"{platform.url('notifications')}/v1/mail", params={"limit": 500}, timeout=10,
                         headers={"Authorization": f"Bearer {platform.admin_token}"})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["mail"] if EMAIL in m["recipients"]]


def link_in(platform: Platform, subject: str) -> str:
    mail = wait_for(lambda: [m for m in inbox(platform) if subject in (m["subject"] or "")], timeout=60)
    found = LINK.search(mail[-1]["text"])
    assert found is not None, mail[-1]["text"]
    return found.group(0)


def browser_signs_in(platform: Platform, password_link: str) -> str:
    """Set the password on the invitation's page and sign in with it, in Chromium; the
    dashboard's header (the user signed in)."""
    from browser.test_portal import start_browser
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = start_browser()
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(password_link)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "set-password")))
        assert browser.find_element(By.ID, "user-email").text == EMAIL
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "password2").send_keys(PASSWORD)
        browser.find_element(By.ID, "set-password").click()
        wait.until(expected_conditions.url_contains("/portal/signin?done=password"))
        browser.find_element(By.ID, "email").send_keys(EMAIL)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in-password").click()
        wait.until(expected_conditions.url_contains("/portal/dashboard"))
        header = str(browser.find_element(By.ID, "user-email").text)
        browser.find_element(By.LINK_TEXT, "Users").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "invite")))
        return header
    finally:
        browser.quit()


def test_a_partner_signs_up_is_approved_signs_in_and_hears_of_its_payment(platform: Platform) -> None:
    started = time.monotonic()
    gateway, staff = platform.url("gateway"), AdminApi(platform)
    signed_up = httpx.post(f"{gateway}/v1/signup", timeout=10, json={
        "name": "Trail Reviews", "email": EMAIL, "company": "Trail Reviews GmbH",
        "website": "https://trail-reviews.example", "traffic_sources": ["website", "email"], "country": "DE",
        "accept_terms": True})
    assert signed_up.status_code == 202, signed_up.text

    confirmed = httpx.get(link_in(platform, "Confirm your email"), timeout=30)
    assert confirmed.status_code == 200 and "your application is recorded" in confirmed.text
    pending = staff.get("partners", "/v1/applications?status=pending").json()["applications"]
    [application] = [a for a in pending if a["email"] == EMAIL]
    partner_id = application["partner_id"]

    notifications = platform.service("notifications")
    notifications.kill9()
    approved = staff.post("partners", f"/v1/applications/{partner_id}/approve", {"reason": "trail content"})
    assert approved["status"] == "approved" and approved["invitation"]["mail"] == "owed"
    notifications.start().wait_until("/readyz", 90)

    header = browser_signs_in(platform, link_in(platform, "You are invited"))
    assert header == EMAIL

    with httpx.Client(base_url=platform.url("partners"), timeout=10,
                      headers={"Authorization": f"Bearer {platform.admin_token}"}) as client:
        billed = client.patch(f"/v1/partners/{partner_id}", json={
            "billing": {"currency": "USD", "frequency": "monthly", "minimum_payout": "0"}})
        assert billed.status_code == 200, billed.text
    offer_id = staff.create_cps_offer(percent="10")
    staff.approve(offer_id, partner_id)
    transaction_id = follow_tracking_link(staff.tracking_link(offer_id, partner_id))
    sale = httpx.post(f"{platform.url('tracking')}/postback", params={
        "transaction_id": transaction_id, "amount": "250.00", "currency": "USD", "order_id": "trail-1",
        "token": postback_token(transaction_id)})
    assert sale.status_code == 200, sale.text
    wait_for(lambda: staff.accrued(partner_id) > 0, timeout=60)
    closed = staff.post("payouts", "/v1/statements/close",
                        {"period_end": datetime.now(UTC).isoformat(), "partner_id": partner_id})
    [statement] = closed["statements"]
    staff.post("payouts", f"/v1/statements/{statement['statement_id']}/paid", {"reference": "wire 7"})

    wait_for(lambda: any("is paid" in (m["subject"] or "") for m in inbox(platform)), timeout=60)
    time.sleep(1.0)  # a second copy of anything would have arrived by now
    subjects = Counter(m["subject"] for m in inbox(platform))
    assert max(subjects.values()) == 1, subjects
    kinds = ["Confirm your email", "approved", "You are invited", "statement", "is paid"]
    for kind in kinds:
        assert any(kind in subject for subject in subjects), (kind, subjects)
    print(f"\nonboarding: sign-up to the paid statement's mail in {time.monotonic() - started:.1f} s")
