"""`make demo` runs `stream-app demo`: a ready worker, then Ctrl-C stops it, Kafka stays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.kafka_admin import broker_answers
from stream_app.localkafka import BrokerInfo
from tests.utils.worker import REPO_ROOT, free_port, worker_env

pytestmark = pytest.mark.integration


def test_demo_serves_health_until_ctrl_c(
    kafka_broker: BrokerInfo, tmp_path: Path, run_id: str
) -> None:
    port = free_port()
    env = worker_env(
        {
            "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
            "STREAM_APP_ID": f"demo-{run_id}",
            "STREAM_TOPIC_PREFIX": f"{run_id}.",
            "STREAM_WEB_PORT": str(port),
            "STREAM_DATA_DIR": str(tmp_path / "data"),
        }
    )
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "stream_app.cli", "demo"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's job
        )  # fmt: skip
    try:
        ready = f"ready: http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 120
        while ready not in log.read_text() and demo.poll() is None:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.25)
        assert demo.poll() is None, log.read_text()[-3000:]
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C does in a terminal
        assert demo.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    text = log.read_text()
    assert "worker stopped. Kafka is still up on" in text
    assert "make kafka-down" in text
    assert broker_answers(kafka_broker.bootstrap)
