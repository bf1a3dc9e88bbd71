"""Fixtures shared by every tier: the real local broker, worker subprocesses, unique names."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from stream_app import localkafka
from stream_app.config import load_settings
from tests.utils.keys import KeySet, make_keys
from tests.utils.worker import WorkerProcess, free_port

_SESSION_BROKER: list[str] = []


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[localkafka.BrokerInfo]:
    """The broker of STREAM_BROKER_URL: reused when it answers, else started for the session.

    Never skipped: no broker and no way to start one is a failure with the reason.
    """
    config = localkafka.broker_config(load_settings())
    with localkafka.running_broker(config) as info:
        _SESSION_BROKER.append(info.describe())
        yield info


@pytest.fixture
def run_id() -> str:
    """A short id unique to this test, for topic names and group ids on a reused broker."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def keys(tmp_path: Path) -> KeySet:
    """This test's own keys: a registry key pair on disk and a bundle key.

    ``keys.worker_env()`` verifies with them, ``keys.writer_env()`` signs too.
    """
    return make_keys(tmp_path / "keys")


@pytest.fixture
def start_worker(
    kafka_broker: localkafka.BrokerInfo, tmp_path: Path, run_id: str
) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: ``start_worker(settings, wait_topics=..., module=...)`` -> a ready worker.

    ``settings`` are STREAM_ variables; the broker, a data directory, a free web port
    and the topic prefix ``<run_id>.`` (so reruns on a used broker start clean) are
    filled in unless given. Every worker started is stopped at teardown.
    """
    workers: list[WorkerProcess] = []

    def start(
        settings: Mapping[str, str],
        *,
        wait_topics: Mapping[str, int] | None = None,
        module: str = "stream_app.cli",
    ) -> WorkerProcess:
        index = len(workers)
        env = {
            "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
            "STREAM_DATA_DIR": str(tmp_path / f"worker-{index}-data"),
            "STREAM_WEB_PORT": str(free_port()),
            "STREAM_TOPIC_PREFIX": f"{run_id}.",
            **settings,
        }
        worker = WorkerProcess(env, tmp_path / f"worker-{index}.log", module=module)
        workers.append(worker)
        worker.start(wait_topics=wait_topics)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _SESSION_BROKER:
        terminalreporter.write_line(f"kafka broker: {line}")
