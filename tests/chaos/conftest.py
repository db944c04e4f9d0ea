"""The chaos suite's platform: the four services as real processes on a PostgreSQL server
and a broker of its own (it restarts the one and pauses the other, which would break
every other test sharing them), plus the table of what each fault did.

Two forms: the short one runs in ``make test``; ``make chaos`` sets
``AFFLUX_CHAOS_LONG=1``, which runs the long form (every fault, 30 s broker pause, more
load) instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from afflux_api import POSTBACK_TOKENS, AdminApi
from chaos_harness import LONG_FORM, ROWS, SHORT_FORM, Chaos, Ledger, Link, Probe

from afflux_infra.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from afflux_infra.platform import Infrastructure, Platform
from afflux_infra.processes import DEFAULT_PORTS
from afflux_infra.provision import ensure_topics

LONG = os.environ.get("AFFLUX_CHAOS_LONG") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One form per run: the long one (``chaos_long``) only with AFFLUX_CHAOS_LONG=1, and
    then instead of the short one."""
    keep, drop = [], []
    for item in items:
        long_form = item.get_closest_marker("chaos_long") is not None
        if item.get_closest_marker("chaos") is None or long_form == LONG:
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    header = ("fault", "load held (req/s)", "events checked", "lost", "duplicated", "recovery time", "notes")
    lines = [(row.fault, f"{row.load:.1f}", str(row.checked), str(row.lost), str(row.duplicated),
              "never" if row.recovery is None else f"{row.recovery:.2f} s", row.notes) for row in ROWS]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    terminalreporter.write_sep("=", f"chaos ({'long' if LONG else 'short'} form)")
    for cells in [header, tuple("-" * w for w in widths), *lines]:
        terminalreporter.write_line(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    form = LONG_FORM if LONG else SHORT_FORM
    with ExitStack() as stack:
        postgres = EmbeddedPostgres().start()
        stack.callback(postgres.stop)
        broker = EmbeddedBroker().start()
        stack.callback(broker.stop)
        asyncio.run(ensure_topics(broker.bootstrap_servers, replication=broker.replication_factor))
        prefix = f"chaos-{secrets.token_hex(4)}"
        platform = Platform(
            Infrastructure(database_url=postgres.url, bootstrap_servers=broker.bootstrap_servers,
                           kind="embedded"),
            ports={name: free_port() for name in DEFAULT_PORTS},
            log_dir=tmp_path_factory.mktemp("chaos-logs"),
            extra_env={"AFFLUX_CONSUMER_GROUP_PREFIX": prefix},
        )
        stack.callback(platform.stop)
        platform.start()
        api = AdminApi(platform)
        offer_id = api.create_cps_offer(percent="8")
        links = []
        for n in range(form.partners + 1):
            partner_id = api.create_partner(f"Chaos{n}")
            api.approve(offer_id, partner_id)
            links.append(Link(partner_id, api.tracking_link(offer_id, partner_id)))
        ledger = Ledger(offer_id, POSTBACK_TOKENS[offer_id], links[1:])
        yield Chaos(platform, broker, postgres, ledger, Probe(links[0]), form, prefix)
