"""The Grafana dashboard charts only metrics the services export, under their real names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import afflux_plumbing.consumer_lag
import afflux_plumbing.metrics  # registers the metrics the dashboard charts

DASHBOARD = Path(__file__).resolve().parents[1] / "grafana" / "afflux-dashboard.json"


def test_every_metric_the_dashboard_charts_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    charted = {name for expr in exprs for name in re.findall(r"\bafflux_[a-z_]+", expr)}
    exported = set(REGISTRY._names_to_collectors)
    assert charted and charted <= exported, charted - exported
    assert afflux_plumbing.consumer_lag.CONSUMER_LAG._name in charted


def test_panels_do_not_overlap_and_have_unique_ids() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells = [(panel["gridPos"]["x"] + dx, panel["gridPos"]["y"] + dy) for panel in panels
             for dx in range(panel["gridPos"]["w"]) for dy in range(panel["gridPos"]["h"])]
    assert len(cells) == len(set(cells))
