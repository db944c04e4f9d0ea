"""``afflux run`` under kill -9: each service in turn is killed with SIGKILL while clicks
and postbacks keep coming; the launcher says how it ended, restarts it, and keeps the
others and the embedded broker running. Afterwards every click answered 302 and every
postback answered 200 is on the log, and every answered conversion was decided."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
from afflux_api import wait_for
from afflux_log import envelopes_on

from afflux_contracts import ATTRIBUTION, TRACKING, ClickRecorded, ConversionReported
from afflux_infra.embedded import free_port
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure

pytestmark = pytest.mark.slow

TOKEN = "supervision-test-token"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}
PACE = 0.025
"""Seconds between two clicks of the load (about 40 clicks/s at most); every fourth click
also gets a postback."""


@dataclass
class Launcher:
    """``afflux run`` as a terminal starts it, on free ports and a broker port we know."""

    process: subprocess.Popen[bytes]
    output: Path
    ports: dict[str, int]
    bootstrap: str

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def service_pid(self, name: str) -> int | None:
        """The pid of service ``name``'s live process (a child of the launcher), if any."""
        found = [child.pid for child in psutil.Process(self.process.pid).children()
                 if f"afflux_{name}" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE]
        assert len(found) <= 1, (name, found)
        return found[0] if found else None


@pytest.fixture
def launcher(infra: SessionInfrastructure, tmp_path: Path) -> Iterator[Launcher]:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    broker_port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update({"DATABASE_URL": infra.new_database(), "AFFLUX_ADMIN_TOKEN": TOKEN,
                **{f"AFFLUX_{name.upper()}_PORT": str(port) for name, port in ports.items()}})
    output = tmp_path / "afflux-run.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "afflux_infra.cli", "run", "--broker-port", str(broker_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    running = Launcher(process, output, ports, f"127.0.0.1:{broker_port}")
    try:
        wait_for(lambda: "Ctrl-C stops everything" in running.text() or process.poll() is not None, 120)
        assert process.poll() is None, running.text()
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Load:
    """Clicks on one link, a postback for every fourth, until stopped; what was answered."""

    link: str
    tracking: str
    token: str
    clicks: list[str] = field(default_factory=list)
    """transaction_id of every click answered 302."""
    conversions: list[str] = field(default_factory=list)
    """conversion_id of every postback answered 200."""
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=5, headers=BROWSER) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                transaction_id = self.click(client)
                if transaction_id is not None and n % 4 == 0:
                    self.postback(client, transaction_id, n)
                time.sleep(PACE)

    def click(self, client: httpx.Client) -> str | None:
        try:
            response = client.get(self.link)
        except httpx.TransportError:
            self.refused += 1
            return None
        if response.status_code != 302:
            self.refused += 1
            return None
        transaction_id = parse_qs(urlsplit(response.headers["location"]).query)["tid"][0]
        self.clicks.append(transaction_id)
        return transaction_id

    def postback(self, client: httpx.Client, transaction_id: str, n: int) -> None:
        try:
            response = client.get(f"{self.tracking}/postback", params={
                "transaction_id": transaction_id, "amount": "50.00", "currency": "USD",
                "order_id": f"order-{n}", "token": self.token})
        except httpx.TransportError:
            self.refused += 1
            return
        if response.status_code == 200:
            self.conversions.append(response.json()["conversion_id"])
        else:
            self.refused += 1


def seed(launcher: Launcher) -> Load:
    """A partner on an approved CPS offer, and its link working."""
    admin = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=launcher.url("partners"), headers=admin, timeout=10) as partners:
        partner = partners.post("/v1/partners", json={"name": "Kept", "email": "kept@example.com"})
        offer = partners.post("/v1/offers", json={
            "name": "Kept up", "currency": "USD", "destination_url": "https://shop.example/?tid={transaction_id}",
            "payout": {"type": "cps", "percent": "8"}})
        partner_id, offer_id = partner.json()["partner_id"], offer.json()["offer_id"]
        path = f"/v1/offers/{offer_id}/partners/{partner_id}"
        assert partners.put(path, json={"approved": True}).status_code == 200
        link = partners.get(f"{path}/tracking-link").json()["url"]
    return Load(link, launcher.url("tracking"), offer.json()["postback_token"])


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def kill_and_wait_for_restart(launcher: Launcher, name: str) -> None:
    pid = launcher.service_pid(name)
    assert pid is not None, launcher.text()
    os.kill(pid, signal.SIGKILL)
    label = f"service {name} (port {launcher.ports[name]})"
    wait_for(lambda: f"{label} exited with code -9 (killed by SIGKILL); restarting it in" in launcher.text(),
             20)
    wait_for(lambda: launcher.service_pid(name) not in (None, pid) and healthy(launcher.url(name)), 60,
             interval=0.1)
    assert launcher.process.poll() is None, launcher.text()
    others = [other for other in DEFAULT_PORTS if other != name]
    assert all(healthy(launcher.url(other)) for other in others), launcher.text()


@pytest.mark.timeout(900)  # eight kills and restarts under load: minutes beside another platform
def test_every_service_killed_in_turn_comes_back_and_every_answered_click_and_postback_is_on_the_log(
    launcher: Launcher,
) -> None:
    load = seed(launcher)
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()
    try:
        wait_for(lambda: len(load.conversions) >= 5, 30)
        for name in DEFAULT_PORTS:
            answered = len(load.clicks)
            kill_and_wait_for_restart(launcher, name)
            wait_for(lambda answered=answered: len(load.clicks) > answered + 10, 30)
    finally:
        load.stop.set()
        worker.join(timeout=10)

    text = launcher.text()
    assert len(re.findall(r"exited with code -9 \(killed by SIGKILL\)", text)) == len(DEFAULT_PORTS), text
    assert "stopping the platform" not in text, text
    clicks, conversions = set(load.clicks), set(load.conversions)
    tracking = asyncio.run(envelopes_on(launcher.bootstrap, TRACKING))
    recorded = {e.payload.transaction_id for e in tracking if isinstance(e.payload, ClickRecorded)}
    reported = {e.payload.conversion_id for e in tracking if isinstance(e.payload, ConversionReported)}
    assert clicks - recorded == set(), f"{len(clicks - recorded)} answered clicks not on the log"
    assert conversions - reported == set(), f"{len(conversions - reported)} answered postbacks not on the log"

    def undecided() -> set[str]:
        decisions = asyncio.run(envelopes_on(launcher.bootstrap, ATTRIBUTION))
        return conversions - {getattr(e.payload, "conversion_id", None) for e in decisions}

    wait_for(lambda: not undecided(), 60, interval=1.0)
