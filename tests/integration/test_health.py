"""/health and /readyz tell the truth: 503 unless the app runs, the broker answers and a
verified model serves."""

from __future__ import annotations

import pytest

from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.localkafka import BrokerInfo
from stream_app.web import health_report, readiness_report
from tests.utils.worker import free_port

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
        "bootstrap": [app.settings.bootstrap_servers[0]],
        "assigned_partitions": {},
    }
