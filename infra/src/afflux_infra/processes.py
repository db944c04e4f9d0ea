"""Afflux services as OS processes: how ``make run`` starts them (and restarts one that
dies), and how the end-to-end and crash tests start (and kill) them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_PORTS = {"partners": 8001, "tracking": 8002, "attribution": 8003, "payouts": 8004, "gateway": 8005,
                 "postbacks": 8006, "console": 8007, "notifications": 8008}
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

    @property
    def label(self) -> str:
        """How the launcher names it: the service and its port (instances share a name)."""
        return f"{self.name} (port {self.port})"

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


def exit_status(code: int | None) -> str:
    """A process's end in words: ``code 1``, or ``code -9 (killed by SIGKILL)``."""
    if code is None:
        return "no exit status"
    if code < 0:
        with suppress(ValueError):
            return f"code {code} (killed by {signal.Signals(-code).name})"
    return f"code {code}"


class ServiceKeepsDying(RuntimeError):
    """A service died too often within the policy's window: restarting it again would only
    hide a fault that needs a person (a bad setting, a database that refuses it)."""


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead service is started again, and when the launcher gives up on it.

    The n-th death within ``window`` seconds waits ``first_delay * 2**(n-1)`` seconds
    (at most ``max_delay``) before the restart, so a service that cannot start does not
    spin; the ``max_deaths``-th death within the window stops the platform."""

    max_deaths: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, deaths: int) -> float:
        """Seconds to wait before restarting after the ``deaths``-th death in the window."""
        return float(min(self.first_delay * 2 ** max(deaths - 1, 0), self.max_delay))

    def gives_up(self, deaths: int) -> bool:
        return deaths >= self.max_deaths


@dataclass
class _Watched:
    process: ServiceProcess
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


class Supervisor:
    """Keeps services running: a process that exits on its own is started again after
    the policy's backoff, with a line saying which one, how it ended and when it comes
    back. The others keep running meanwhile: every service resumes from positions and
    outboxes in PostgreSQL, so a restarted one loses nothing and repeats nothing."""

    def __init__(self, processes: Sequence[ServiceProcess], say: Callable[[str], None],
                 policy: RestartPolicy = RestartPolicy(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.watched = [_Watched(process) for process in processes]
        self.say = say
        self.policy = policy
        self.clock = clock

    def check(self) -> None:
        """One round: restart what is due, note what died. Raises ``ServiceKeepsDying``."""
        now = self.clock()
        for watched in self.watched:
            if watched.restart_at is not None:
                if now >= watched.restart_at:
                    self._restart(watched)
            elif not watched.process.running:
                self._died(watched, now)

    def _died(self, watched: _Watched, now: float) -> None:
        process = watched.process
        code = process.process.returncode if process.process is not None else None
        watched.deaths.append(now)
        while watched.deaths and watched.deaths[0] <= now - self.policy.window:
            watched.deaths.popleft()
        deaths = len(watched.deaths)
        if self.policy.gives_up(deaths):
            raise ServiceKeepsDying(
                f"service {process.label} exited with {exit_status(code)}, {deaths} exits within "
                f"{self.policy.window:g} s: it keeps dying; stopping the platform")
        delay = self.policy.delay(deaths)
        self.say(f"service {process.label} exited with {exit_status(code)}; restarting it in "
                 f"{delay:g} s ({deaths} exit(s) within {self.policy.window:g} s; the platform "
                 f"stops at {self.policy.max_deaths})")
        watched.restart_at = now + delay

    def _restart(self, watched: _Watched) -> None:
        watched.restart_at = None
        process = watched.process.start()
        pid = process.process.pid if process.process is not None else None
        self.say(f"service {process.label} restarted (pid {pid})")
