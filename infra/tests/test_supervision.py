"""``afflux run`` keeps its services up: the restart policy and the supervisor over real
processes (a service module that does not exist dies at once, every time it is started)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from afflux_infra.embedded import free_port
from afflux_infra.processes import RestartPolicy, ServiceKeepsDying, ServiceProcess, Supervisor, exit_status

QUICK = RestartPolicy(max_deaths=3, window=60.0, first_delay=0.01, max_delay=0.04)


def test_restart_waits_double_with_each_death_up_to_the_cap_and_the_fifth_death_gives_up() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [policy.gives_up(n) for n in range(1, 6)] == [False, False, False, False, True]


def test_exit_status_names_the_signal_that_killed_a_process() -> None:
    assert exit_status(-9) == "code -9 (killed by SIGKILL)"
    assert exit_status(-15) == "code -15 (killed by SIGTERM)"
    assert exit_status(1) == "code 1"
    assert exit_status(None) == "no exit status"


def crashing_service(log_dir: Path) -> ServiceProcess:
    """``python -m afflux_nosuch``: exits with status 1 as soon as it starts."""
    return ServiceProcess("nosuch", {}, free_port(), log_dir / "nosuch.log").start()


def supervise_until(supervisor: Supervisor, lines: list[str], done: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(lines) < done:
        assert time.monotonic() < deadline, lines
        supervisor.check()
        time.sleep(0.01)


def test_a_dying_service_is_restarted_saying_how_it_ended_until_it_keeps_dying(tmp_path: Path) -> None:
    lines: list[str] = []
    service = crashing_service(tmp_path)
    supervisor = Supervisor([service], lines.append, QUICK)
    with pytest.raises(ServiceKeepsDying) as stopped:
        supervise_until(supervisor, lines, done=10)
    label = f"nosuch (port {service.port})"
    assert lines[0] == (f"service {label} exited with code 1; restarting it in 0.01 s "
                        "(1 exit(s) within 60 s; the platform stops at 3)")
    assert lines[1].startswith(f"service {label} restarted (pid ")
    assert lines[2] == (f"service {label} exited with code 1; restarting it in 0.02 s "
                        "(2 exit(s) within 60 s; the platform stops at 3)")
    assert lines[3].startswith(f"service {label} restarted (pid ")
    assert len(lines) == 4
    assert str(stopped.value) == (f"service {label} exited with code 1, 3 exits within 60 s: "
                                  "it keeps dying; stopping the platform")


def test_deaths_older_than_the_window_do_not_count_toward_giving_up(tmp_path: Path) -> None:
    lines: list[str] = []
    now = [0.0]

    def clock() -> float:
        now[0] += 31.0  # every check is half a window after the one before
        return now[0]

    supervisor = Supervisor([crashing_service(tmp_path)], lines.append, QUICK, clock=clock)
    supervise_until(supervisor, lines, done=12)  # six deaths, twice the policy's limit
    deaths = [line for line in lines if "exited" in line]
    assert len(deaths) == 6
    assert all("restarting it in 0.01 s (1 exit(s) within 60 s" in line for line in deaths), deaths
