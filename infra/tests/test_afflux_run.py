"""``afflux run`` (what ``make run`` starts), as a newcomer's terminal drives it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from afflux_infra.embedded import free_port
from afflux_infra.processes import DEFAULT_PORTS

pytestmark = pytest.mark.slow

TOKEN = "launcher-test-token"


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_afflux_run_serves_every_service_with_the_given_token_and_a_double_ctrl_c_stops_it_cleanly(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    env = {**os.environ, "AFFLUX_ADMIN_TOKEN": TOKEN,
           **{f"AFFLUX_{name.upper()}_PORT": str(port) for name, port in ports.items()}}
    output = tmp_path / "afflux-run.log"
    with output.open("wb") as log:
        # A session of its own, like a terminal's foreground job: Ctrl-C goes to the group.
        launcher = subprocess.Popen([sys.executable, "-m", "afflux_infra.cli", "run"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops everything" not in (banner := output.read_text()):
            assert launcher.poll() is None, banner
            assert time.monotonic() < deadline, f"the platform did not come up:\n{banner}"
            time.sleep(0.2)

        assert all(healthy(port) for port in ports.values())
        assert f"admin token  {TOKEN}" in banner
        assert all(f"http://127.0.0.1:{port}" in banner for port in ports.values())
        partners = f"http://127.0.0.1:{ports['partners']}/v1/partners/no-such-partner"
        assert httpx.get(partners, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        assert httpx.get(partners, headers={"Authorization": "Bearer guessed"}).status_code == 401

        os.killpg(launcher.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(launcher.pid, signal.SIGINT)  # `uv run` and make pass the same Ctrl-C on again
        assert launcher.wait(timeout=90) == 0, output.read_text()
        assert output.read_text().rstrip().endswith("stopped.")
        assert not [name for name, port in ports.items() if listening(port)]
    finally:
        stop(launcher)


def stop(launcher: subprocess.Popen[bytes]) -> None:
    """Whatever the test's outcome, let the launcher stop what it started (SIGKILL would
    orphan the services, the broker and PostgreSQL, which run in sessions of their own)."""
    if launcher.poll() is None:
        os.killpg(launcher.pid, signal.SIGTERM)
        try:
            launcher.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
