"""/health and /readyz tell the truth: 503 unless the app runs, the broker answers, a
verified model serves and every agent's batches go through."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.faust_step import EXIT_TRANSACTION_FAILED
from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.topics import topic_names
from stream_app.web import health_report, readiness_report
from tests.utils.kafka_io import produce, read_until
from tests.utils.metrics import fates_counted, sample, wait_for_samples
from tests.utils.worker import WorkerProcess, free_port

pytestmark = pytest.mark.integration


async def test_an_app_that_is_not_running_is_unhealthy(kafka_broker: BrokerInfo) -> None:
    app = create_app(load_settings({"STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}"}))
    status, report = await health_report(app)
    assert status == 503
    assert report["status"] == "unhealthy"
    assert report["app"]["running"] is False
    assert report["kafka"]["reachable"] is True
    assert report["model"]["loaded"] is False
    assert report["failures"]["critical"] == ["app", "model"]


def test_an_app_without_partitions_tables_or_model_is_not_ready() -> None:
    app = create_app(load_settings({}))
    status, body = readiness_report(app)
    assert status == 503
    assert body == {
        "ready": False,
        "http_status": 503,
        "reasons": [
            "no partitions assigned yet",
            "tables not recovered from their changelogs yet",
            "no verified model loaded",
        ],
    }


async def test_an_unreachable_broker_is_reported() -> None:
    app = create_app(load_settings({"STREAM_BROKER_URL": f"kafka://127.0.0.1:{free_port()}"}))
    status, report = await health_report(app)
    assert status == 503
    assert report["kafka"] == {
        "reachable": False,
        "brokers": 0,
        "checked_seconds_ago": 0.0,
        "assigned_partitions": {},
    }
    assert str(app.settings.bootstrap_servers[0]) not in json.dumps(report)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=400)
    return out


def _requests(n: int) -> list[tuple[bytes | None, bytes]]:
    return [
        (f"c{i}".encode(), json.dumps({
            "request_id": f"r{i}", "client_id": f"c{i}", "user_id": f"USR{i:05d}", "age": 30,
            "purchase_history": [9.5], "category_preference": "home",
            "session_duration_minutes": 3.0}).encode())
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_failing_agent_is_never_healthy_and_loses_nothing(
    kafka_broker: BrokerInfo,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
    tmp_path: Path,
    guarantee: str,
) -> None:
    """at_least_once: unhealthy and not ready while the intake's batch fails, then the same
    batch goes through. exactly_once: the worker exits (its transactions are aborted) and
    a restarted one delivers every request once."""
    app_id = f"faults-{run_id}-{guarantee[0]}"
    names = topic_names(load_settings({}, topic_prefix=f"{run_id}.", app_id=app_id))
    source, predictions = names["prediction_requests"], names["predictions"]
    flag = tmp_path / "outputs-down"
    env = {"STREAM_APP_ID": app_id, "STREAM_PARTITIONS": "2", "TEST_BUNDLE_DIR": str(bundle_dir),
           "STREAM_PROCESSING_GUARANTEE": guarantee, "TEST_FAIL_FLAG": str(flag)}  # fmt: skip
    module = "tests.integration.pipeline_app"
    worker = start_worker(env, module=module, wait_topics={source: 2})
    worker.wait_ready()
    flag.touch()
    await produce(kafka_broker.bootstrap, source, _requests(20))

    if guarantee == "exactly_once":
        assert worker.process is not None
        assert worker.process.wait(120) == EXIT_TRANSACTION_FAILED
        flag.unlink()
        worker = start_worker(env, module=module, wait_topics={source: 2})
    else:
        health = worker.wait_for("/health", lambda b: b["status"] == "unhealthy", "unhealthy")
        assert health["failures"]["critical"] == ["agents"]
        assert "agent intake failing since" in health["agents"]["error"]
        assert "ConnectionError" in health["agents"]["error"]
        ready = worker.get("/readyz") or {}
        assert ready["ready"] is False
        assert any(r.startswith("agent intake failing") for r in ready["reasons"])
        flag.unlink()  # the output is back: the same batch goes through

    got = await read_until(
        kafka_broker.bootstrap, [predictions], lambda g: len({r.key for r in g[predictions]}) >= 20
    )
    keys = [r.key for r in got[predictions]]
    assert set(keys) == {f"r{i}".encode() for i in range(20)}
    health = worker.wait_for("/health", lambda b: b["status"] == "healthy", "healthy")
    assert (worker.get("/readyz") or {})["ready"] is True
    if guarantee == "exactly_once":
        assert len(keys) == 20
    else:
        failed = health["agents"]["failed_batches"]["intake"]
        assert health["agents"]["up"] is True and failed >= 1
        # The batch tried `failed` times and then delivered is counted once.
        samples = wait_for_samples(worker, lambda s: fates_counted(s) >= 20, "20 fates")
        assert sample(samples, "stream_app_requests_total", fate="scored") == 20
        assert fates_counted(samples) == 20
        assert sample(samples, "stream_app_agent_failures_total", agent="intake") == failed
