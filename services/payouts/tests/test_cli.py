"""Payouts' own commands (which the ``afflux`` CLI mounts), on their own: how they read
a moment, and that they are what the mount gives the operator."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from afflux_payouts.entrypoints.cli import app, parse_moment


def test_moments_without_a_zone_are_utc() -> None:
    assert parse_moment("2026-03-06T00:00:00", "--until") == datetime(2026, 3, 6, tzinfo=UTC)
    assert parse_moment("2026-03-06T01:00:00+01:00", "--until") == datetime(2026, 3, 6, tzinfo=UTC)


def test_payouts_names_its_commands_and_what_they_need() -> None:
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert all(command in listed.output for command in ("replay", "drift", "verify", "what-if"))
    unset = CliRunner().invoke(app, ["verify", "statement", "st_1"],
                               env={"DATABASE_URL": None, "KAFKA_BOOTSTRAP_SERVERS": None})
    assert unset.exit_code == 2 and "set DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS" in unset.output
