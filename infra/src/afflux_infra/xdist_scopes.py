"""Pytest plugin: how ``make test`` shares its test files among its workers.

``make test`` runs ``--dist loadfile``: a file's tests run on one worker, so a module's
platform is started once. A few files, though, must not run beside each other: the two
suites that kill -9 service processes under load (``SHARED_SCOPES``) slowed each other
about three-fold (2026-12-07, two cores: 121 s and 137 s side by side against 39 s and
35 s one after the other, and 226 s each in a CI run), since each restart waits for
imports, a consumer-group join and a catch-up on a machine the other's restarts keep
busy. Files named together here form one work unit, run one after the other on one
worker, while the other worker goes on with the rest.
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED_SCOPES = {
    "tests/fault/test_supervision.py": "kill -9 under load",
    "tests/fault/test_crash_recovery.py": "kill -9 under load",
}
"""Test files (from the repository's root) that run one after the other: file -> unit."""


def shared_scope(nodeid: str) -> str:
    """The work unit of a test: its file, or the unit its file shares (``SHARED_SCOPES``)."""
    path = nodeid.split("::", 1)[0]
    return SHARED_SCOPES.get(path, path)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with ``SHARED_SCOPES`` (any other mode: xdist's own)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFileScheduling(LoadFileScheduling):  # type: ignore[misc]  # xdist ships no types
        def _split_scope(self, nodeid: str) -> str:
            return shared_scope(nodeid)

    return SharedFileScheduling(config, log)
