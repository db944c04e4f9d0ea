"""Afflux services as OS processes: how ``make run`` starts them and how the
end-to-end and crash tests start (and kill) them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_PORTS = {"partners": 8001, "tracking": 8002, "attribution": 8003, "payouts": 8004, "gateway": 8005,
                 "postbacks": 8006}
"""The services and their default ports (ARCHITECTURE.md, "Running it")."""


@dataclass
class ServiceProcess:
    """One service (``python -m afflux_<name>``) on its own port."""

    name: str
    env: dict[str, str]
    port: int
    log_path: Path | None = None
    """Where its output goes; None: this terminal."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, f"AFFLUX_{self.name.upper()}_PORT": str(self.port)}
        command = [sys.executable, "-m", f"afflux_{self.name}"]
        # A session of its own: Ctrl-C reaches only the launcher, which stops the services
        # itself, so that a service stopping is never mistaken for a service failing.
        if self.log_path is None:
            self.process = subprocess.Popen(command, env=env, start_new_session=True)
        else:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        return self

    def wait_until(self, path: str = "/readyz", timeout: float = 60.0) -> None:
        """Block until ``path`` answers 200; fail early, with its log, if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self.process.returncode if self.process else None
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.logs()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {path} within {timeout}s:\n{self.logs()}")

    def logs(self, tail: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-tail:]

    def kill9(self) -> None:
        """Crash it: no shutdown hooks, no flushing, like a power cut."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, grace: float = 15.0) -> None:
        if self.running:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
