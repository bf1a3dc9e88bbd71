"""`make demo`'s code path on a small day, checked against the scenario's truth and
every output message against its topic's exported JSON Schema, then its worker's
dashboard and its HTML report in a real browser.

One run only: a day of this size takes some 40 s here (the pipeline does about 100
events/s on the 2 shared cores), so a second run to compare reports would double that.
The run keeps its worker (``--keep-worker``) for the dashboard; the fixture stops it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from playwright.sync_api import Page

from schemas.contracts import OUTPUTS
from stream_app.commands.schemas import export_schemas
from stream_app.dashboard.page import PANELS
from stream_app.demo.launch import stop_worker
from stream_app.demo.report import REQUEST_REASONS
from stream_app.demo.run import DemoOptions, DemoResult, run_demo
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from tests.utils.browser import chromium_or_fail, colours, visit
from tests.utils.kafka_io import read_topics
from tests.utils.worker import free_port

pytestmark = pytest.mark.integration

# Small enough to play in half a minute, large enough for every invalid kind, three
# bursts, PII requests and a drift window every hour.
REQUESTS = 1_500
PII_TOPICS = ("prediction_logs", "predictions", "alerts", "drift_reports", "ab_reports")


def demo_once(kafka: BrokerInfo, data: Path, run_id: str, lines: list[str]) -> DemoResult:
    environ = {
        "STREAM_BROKER_URL": f"kafka://{kafka.bootstrap}",
        "STREAM_DATA_DIR": str(data),
        "STREAM_WEB_PORT": str(free_port()),
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
    }
    # The drain timeout guards against a hang; it is not a speed limit.
    options = DemoOptions(seed=11, requests=REQUESTS, drain_timeout=180.0, keep_worker=True)
    return run_demo(options, lines.append, environ)


@pytest.fixture(scope="module")
def demo_day(
    kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DemoResult, list[str]]]:
    """The module's one demo day, its worker still running, and the lines it printed."""
    lines: list[str] = []
    data = tmp_path_factory.mktemp("demo") / "data"
    result = demo_once(kafka_broker, data, uuid.uuid4().hex[:10], lines)
    try:
        yield result, lines
    finally:
        if result.kept_worker is not None:
            stop_worker(result.kept_worker)


def test_demo_day_matches_its_truth(
    kafka_broker: BrokerInfo, demo_day: tuple[DemoResult, list[str]], tmp_path: Path
) -> None:
    first, lines = demo_day
    assert first.drained, "\n".join(lines[-30:])
    truth, summary = first.scenario.truth, first.summary

    # Every request accounted for, by fate and by reason.
    assert summary.predictions == truth.count("scored")
    assert dict(summary.throttled_by_client) == dict(truth.throttled_by_client)
    requests_invalid = {r: n for r, n in summary.invalid_by_reason.items() if r in REQUEST_REASONS}
    assert requests_invalid == dict(truth.invalid_by_reason)
    assert summary.invalid_requests == truth.count("invalid") + truth.invalid_unidentified
    assert sum(summary.predictions_by_variant.values()) == sum(truth.exposures.values())

    # The same request ids come out as predictions; no planted PII value in any byte.
    names = topic_names(first.settings)
    everything_out = asyncio.run(
        read_topics(kafka_broker.bootstrap, [names[t] for t in OUTPUTS], idle_seconds=1.0)
    )
    found = {names[t]: everything_out[names[t]] for t in PII_TOPICS}
    predicted = {r.key for r in found[names["predictions"]]}
    scored = {rid.encode() for rid, fate in truth.fates.items() if fate == "scored"}
    assert predicted == scored
    assert truth.pii_values
    everything = b"\n".join(
        (r.key or b"") + b"\t" + r.value for records in found.values() for r in records
    )
    leaked = [value for value in truth.pii_values if value.encode() in everything]
    assert leaked == []

    # The shifted feature is found from the shift on, the planted incident alerts once.
    shifted = [f for f in summary.drift_found if truth.shift_feature in f.features]
    assert shifted, first.report
    assert min(f.window_start or "" for f in shifted) >= truth.shift_at.isoformat()
    incident = [a.kind for a in summary.alerts if a.service == truth.incident_service]
    assert incident == ["firing", "escalated", "deescalated", "resolved"], first.report

    # Every message of every output topic matches the JSON Schema its contract exports.
    schemas = tmp_path / "contracts"
    export_schemas(schemas)
    counts, refused = {}, {}
    for attr in OUTPUTS:
        schema = json.loads((schemas / f"{attr}.schema.json").read_text())
        validator = Draft202012Validator(schema)
        records = everything_out[names[attr]]
        counts[attr] = len(records)
        bad = [r.offset for r in records if not validator.is_valid(json.loads(r.value))]
        if bad:
            refused[attr] = bad[:5]
    assert refused == {}
    assert [attr for attr, n in counts.items() if n == 0] == [], counts
    logged = {r.key for r in everything_out[names["prediction_logs"]]}
    assert logged == predicted


# The fewest series each panel draws after the demo day: traffic (scored, throttled, the
# invalid reasons), the model (registered, promoted), A/B (two rates, two intervals, p,
# alpha), drift (the heat map, reference, window), alerts (an episode and its events).
MIN_SERIES = {"traffic": 4, "model": 2, "ab": 6, "drift": 3, "alerts": 2}


def _dashboard_ready(url: str, timeout: float = 120.0) -> str:
    """The dashboard once its follower has read the report topics and no panel is empty
    (the worker draws it again every 5 s); the last page if that never happens."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - our worker
            page = answer.read().decode()
        if "Still reading" not in page and 'class="empty"' not in page:
            return page
        if time.monotonic() > deadline:
            return page
        time.sleep(1.0)


def _wait_for_refresh(page: Page) -> None:
    # The page's script fetches it again every interval: wait for one answer to come.
    with page.expect_response(lambda r: r.request.resource_type == "fetch", timeout=60_000):
        pass


def _check_panels(panels: dict[str, dict[str, list[str] | int]], where: str) -> None:
    assert list(panels) == list(PANELS), where
    for name, seen in panels.items():
        assert seen["empty"] == [], f"{where}: {name} is empty"
        assert seen["blank"] == [], f"{where}: {name} has series with nothing drawn"
        series = seen["series"]
        assert isinstance(series, list) and len(series) >= MIN_SERIES[name], (where, name, series)


def test_dashboard_and_html_report_in_a_browser(
    demo_day: tuple[DemoResult, list[str]], tmp_path: Path
) -> None:
    chromium_or_fail()
    result, lines = demo_day
    base = f"http://{result.settings.web_host}:{result.settings.web_port}"
    kept = f"the worker (pid {result.worker_pid}) keeps running; its dashboard: {base}/dashboard"
    assert any(line.strip() == kept for line in lines)
    _dashboard_ready(base + "/dashboard")
    with urllib.request.urlopen(base + "/", timeout=30) as answer:  # noqa: S310 - our worker
        assert re.findall(r'data-panel="(\w+)"', answer.read().decode()) == list(PANELS)
    with urllib.request.urlopen(base + "/dashboard/traffic", timeout=30) as answer:  # noqa: S310
        traffic = json.load(answer)
    assert traffic["ring_size"] == 720 and traffic["points"]

    live = visit(base + "/dashboard", tmp_path / "dashboard.png", then=_wait_for_refresh)
    assert live.errors == []
    assert [u for u in live.requests if not u.startswith(base + "/")] == []
    assert live.requests.count(base + "/dashboard") >= 2  # the page, then its refresh
    _check_panels(live.panels, "dashboard")
    assert colours(tmp_path / "dashboard.png") > 16

    report = result.html_report
    assert report is not None and report == result.settings.data_dir / "report.html"
    assert f"HTML report: {report}" in lines
    static = visit(report.as_uri(), tmp_path / "report.png")
    assert static.errors == []
    assert static.requests == [report.as_uri()]
    _check_panels(static.panels, "report")
    assert colours(tmp_path / "report.png") > 16
