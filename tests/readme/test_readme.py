"""The README's walk-through, run as a reader runs it: every ```bash block in order, in one
bash session (so variables carry over), against one platform started with every setting
the README asks for up front, each shown result checked.

How the README shows a result, so that this test reads it:
- A command is a line (or lines joined by a trailing backslash) that is not a comment.
- The comment lines directly below a command, with no blank line between, are its
  output, exactly (``# `` taken off): every line of it, in order. ``...`` in a shown line
  stands for any text (an id, a time): the rest of the line must match exactly.
- Any other comment (at the start of a block, after a blank line, or at the end of a
  command's line) is prose and is not checked.
- Blocks fenced as ```sh (setup for other machines: real clusters, Docker) are not run.

Reads catch up with the log "a moment later", so a command that only reads (no ``-X``,
no ``-d``, no assignment, nothing in the background) whose output does not match yet is
run again until it does, for a while: the README's ``sleep 1`` is for a person, not for
a loaded CI machine.

The platform listens on free ports, and the README's ``localhost:800N`` (and its
tracker's port 9000) are read as those, so the test runs beside a ``make run``.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from afflux_infra.embedded import free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.testing import SessionInfrastructure

FENCE = re.compile(r"^```(\S*)\s*$")
WRITES = re.compile(r"(^|\s)(-X|-d|--data\S*)(\s|$)|^\s*[A-Za-z_][A-Za-z0-9_]*=|^\s*\w+\s*\(\)\s*\{")


@dataclass(frozen=True)
class Step:
    """One command of the walk-through and the output the README shows for it."""

    command: str
    expected: tuple[str, ...]
    line: int
    """Where the command starts in the README (1-based), for the failure message."""

    @property
    def reads_only(self) -> bool:
        return not WRITES.search(self.command) and "&" not in self.command.replace("&&", "")


def bash_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(line number of the first line, lines) of every ```bash block."""
    blocks: list[tuple[int, list[str]]] = []
    language: str | None = None  # of the fenced block we are in; None: outside any
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and language is None:
            language = fence.group(1)
            if language == "bash":
                blocks.append((number + 1, []))
        elif fence:
            language = None
        elif language == "bash":
            blocks[-1][1].append(line)
    return blocks


def steps_of(lines: list[str], first_line: int) -> list[Step]:
    """The block's commands, each with the comment lines directly below it."""
    steps: list[Step] = []
    command: list[str] = []
    command_line = 0
    expected: list[str] = []
    after_command = False

    def close() -> None:
        nonlocal command, expected
        if command:
            steps.append(Step("\n".join(command), tuple(expected), command_line))
        command, expected = [], []

    for offset, line in enumerate(lines):
        stripped = line.strip()
        if command and command[-1].endswith("\\"):
            command.append(line)
            continue
        if not stripped:
            after_command = False
        elif stripped.startswith("#"):
            if after_command:
                expected.append(stripped[2:] if stripped.startswith("# ") else stripped[1:])
        else:
            close()
            command, command_line, after_command = [line], first_line + offset, True
    close()
    return steps


def walkthrough(readme: Path) -> list[Step]:
    """Every step of every ```bash block of ``readme``, in order."""
    return [step for start, lines in bash_blocks(readme.read_text()) for step in steps_of(lines, start)]


def matches(shown: str, actual: str) -> bool:
    """``actual`` is the line ``shown``, where ``...`` stands for any text."""
    pattern = ".*?".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, actual) is not None


def same_output(expected: tuple[str, ...], actual: list[str]) -> bool:
    return len(expected) == len(actual) and all(map(matches, expected, actual))


class Session:
    """One bash process, fed one command at a time; each answer read up to a sentinel."""

    def __init__(self, cwd: Path, env: dict[str, str], stderr: Path) -> None:
        self.sentinel = f"__readme_step_done_{secrets.token_hex(6)}__"
        self.stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def run(self, command: str, timeout: float) -> tuple[int, list[str]]:
        """Run ``command``; its exit status and output lines."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n__rc=$?; printf '\\n{self.sentinel} %s\\n' \"$__rc\"\n")
        self.process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty as error:
                raise TimeoutError(f"no answer within {timeout}s; so far: {output}") from error
            if line.startswith(self.sentinel):
                status = int(line.split()[1])
                break
            output.append(line.rstrip("\n"))
        if output and output[-1] == "":
            output.pop()  # the newline the sentinel's printf put after the command's last line
        return status, output

    def close(self) -> None:
        """End the shell and whatever it left running in the background (the tracker)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.stderr.close()


def run_step(session: Session, step: Step, settle: float, timeout: float,
             rewrite: Callable[[str], str]) -> None:
    """Run ``step`` (again while it only reads and its output does not match yet); raise
    AssertionError saying what the README shows and what came."""
    command, expected = rewrite(step.command), tuple(rewrite(line) for line in step.expected)
    deadline = time.monotonic() + settle
    while True:
        status, output = session.run(command, timeout)
        if status == 0 and (not expected or same_output(expected, output)):
            return
        if not step.reads_only or time.monotonic() > deadline:
            shown = "\n".join(f"# {line}" for line in expected) or "(nothing checked)"
            got = "\n".join(f"# {line}" for line in output)
            raise AssertionError(f"README line {step.line}: {step.command}\n"
                                 f"exit status {status}; the README shows:\n{shown}\nit printed:\n{got}")
        time.sleep(0.3)


ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SETTINGS = {"AFFLUX_POSTBACKS_ALLOW_PRIVATE": "true"}
"""What the README tells the reader to start the platform with."""
TRACKER_PORT = 9000


def test_the_walkthrough_parser_takes_each_command_with_the_comment_lines_directly_below_it() -> None:
    text = "\n".join([
        "```sh", "make run", "```",
        "```bash",
        "# prose at the start of a block",
        "X=$(echo 1)   # prose after a command",
        "echo \"$X\" \\",
        "  two",
        "# 1 two",
        "",
        "# prose after a blank line",
        "echo done",
        "```",
    ])
    [(start, lines)] = bash_blocks(text)
    steps = steps_of(lines, start)
    assert [(step.command, step.expected, step.line) for step in steps] == [
        ("X=$(echo 1)   # prose after a command", (), 6),
        ('echo "$X" \\\n  two', ("1 two",), 7),
        ("echo done", (), 12),
    ]
    assert [step.reads_only for step in steps] == [False, True, True]


def test_a_shown_line_matches_exactly_but_where_it_shows_an_ellipsis() -> None:
    assert matches('{"partner_id":"...","name":"Creator"}', '{"partner_id":"p-01","name":"Creator"}')
    assert not matches('{"partner_id":"...","name":"Creator"}', '{"partner_id":"p-01","name":"Other"}')
    assert not matches('{"status":"approved"}', '{"status":"approved"} ')
    assert not same_output(("a", "b"), ["a"])


@pytest.fixture(scope="module")
def platform(infra: SessionInfrastructure, bootstrap_for_platform: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(
        Infrastructure(database_url=infra.new_database(), bootstrap_servers=bootstrap_for_platform,
                       kind=infra.server.kind),
        ports={name: free_port() for name in DEFAULT_PORTS},
        log_dir=tmp_path_factory.mktemp("readme-platform"),
        extra_env={**SETTINGS, "AFFLUX_CONSUMER_GROUP_PREFIX": f"readme-{secrets.token_hex(4)}"},
    )
    try:
        yield running.start()
    finally:
        running.stop()


def ports_of(platform: Platform, tracker_port: int) -> dict[str, str]:
    """The README's addresses -> this platform's."""
    addresses = {f"{host}:{port}": f"{host}:{platform.ports[name]}"
                 for name, port in DEFAULT_PORTS.items() for host in ("localhost", "127.0.0.1")}
    return {**addresses, f"127.0.0.1:{TRACKER_PORT}": f"127.0.0.1:{tracker_port}",
            f"http.server {TRACKER_PORT}": f"http.server {tracker_port}"}


@pytest.mark.slow
def test_the_readme_walkthrough_gives_what_it_shows(platform: Platform, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq", "python3") if shutil.which(tool) is None]
    assert not missing, f"the README's walk-through needs {', '.join(missing)} (README: prerequisites)"
    steps = walkthrough(README)
    assert len(steps) > 40 and sum(bool(step.expected) for step in steps) > 20, "the walk-through is gone?"
    addresses = ports_of(platform, free_port())
    pattern = re.compile("|".join(re.escape(address) for address in sorted(addresses, key=len, reverse=True)))

    def rewrite(text: str) -> str:
        return pattern.sub(lambda found: addresses[found.group(0)], text)

    env = {**os.environ, "AFFLUX_ADMIN_TOKEN": platform.admin_token, "TMPDIR": str(tmp_path),
           "DATABASE_URL": platform.infrastructure.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": platform.infrastructure.bootstrap_servers,
           "AFFLUX_CONSUMER_GROUP_PREFIX": platform.extra_env["AFFLUX_CONSUMER_GROUP_PREFIX"]}
    session = Session(ROOT, env, tmp_path / "stderr.log")
    started = time.monotonic()
    try:
        for step in steps:
            try:
                run_step(session, step, settle=20.0, timeout=120.0, rewrite=rewrite)
            except (AssertionError, TimeoutError) as error:
                stderr = (tmp_path / "stderr.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{error}\nthe shell's stderr (end):\n{stderr}") from error
    finally:
        session.close()
    print(f"README walk-through: {len(steps)} commands in {time.monotonic() - started:.1f} s")
