"""deploy/: the scrape config targets the compose services, and the dashboard and
alerts query metrics that the code defines. Plain files: no database, no Django.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.unit]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\bcqrs_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def defined_metrics() -> set[str]:
    """Names given to Counter/Histogram/Gauge or GaugeMetricFamily in the code."""
    sources = [
        ROOT / "observability" / "metrics.py",
        ROOT / "projections" / "monitoring.py",
        ROOT / "commands_app" / "effects.py",
    ]
    names: set[str] = set()
    for source in sources:
        names.update(re.findall(r'"(cqrs_[a-z_]+)"', source.read_text()))
    return names


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in defined_metrics():
            return name[: -len(suffix)]
    return name


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_prometheus_scrapes_the_web_and_each_worker_of_compose(compose) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    services = compose["services"]
    port = services["worker-commands"]["environment"]["WORKER_METRICS_PORT"]
    assert targets == {
        "web:8000",
        f"worker-commands:{port}",
        f"worker-projections:{port}",
    }
    for name in ("web", "worker-commands", "worker-projections", "beat"):
        env = services[name]["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"] in services[name]["tmpfs"]


def test_the_dashboard_and_the_alerts_query_only_defined_metrics() -> None:
    dashboard = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "cqrs-orders.json").read_text()
    )
    exprs = [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {base_name(name) for expr in exprs for name in METRIC.findall(expr)}
    assert used
    assert used - defined_metrics() == set()
    # Every metric the code defines is on the dashboard.
    panel_exprs = " ".join(exprs[: len(exprs) - len(alerts["groups"][0]["rules"])])
    shown = {base_name(name) for name in METRIC.findall(panel_exprs)}
    assert defined_metrics() - shown <= {"cqrs_scrape_error"}
