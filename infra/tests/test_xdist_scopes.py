"""Which test files ``make test`` runs one after the other on one worker."""

from __future__ import annotations

from pathlib import Path

from afflux_infra.xdist_scopes import SHARED_SCOPES, shared_scope

ROOT = Path(__file__).resolve().parents[2]


def test_the_kill_9_suites_share_one_work_unit_and_every_other_file_is_its_own() -> None:
    supervision = shared_scope("tests/fault/test_supervision.py::test_every_service_killed")
    crash = shared_scope("tests/fault/test_crash_recovery.py::test_every_conversion[x::y]")
    assert supervision == crash
    outage = "tests/fault/test_broker_outage.py"
    assert shared_scope(f"{outage}::test_clicks") == outage
    assert shared_scope("tests/e2e/test_gateway.py::Test::test_a") == "tests/e2e/test_gateway.py"


def test_every_file_named_in_a_shared_unit_exists() -> None:
    """A file renamed or moved would silently run beside its partner again."""
    assert [path for path in SHARED_SCOPES if not (ROOT / path).is_file()] == []
