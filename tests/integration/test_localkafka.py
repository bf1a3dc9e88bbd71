"""The local broker's life cycle on ports of its own, next to the session's broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app import localkafka
from stream_app.errors import KafkaUnavailableError
from stream_app.kafka_admin import broker_answers
from tests.utils.worker import REPO_ROOT, free_port, worker_env

pytestmark = pytest.mark.integration


def _java_processes(config: localkafka.BrokerConfig) -> list[int]:
    """Pids of java processes running this config's server.properties."""
    marker = str(config.run_dir / "server.properties").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and marker in argv and b"kafka.Kafka" in argv:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def own_ports() -> Iterator[localkafka.BrokerConfig]:
    config = localkafka.BrokerConfig(
        home=localkafka.default_home(), port=free_port(), controller_port=free_port()
    )
    yield config
    localkafka.stop(config)
    shutil.rmtree(config.run_dir, ignore_errors=True)


def test_up_twice_is_one_broker_and_down_leaves_no_java(
    kafka_broker: localkafka.BrokerInfo, own_ports: localkafka.BrokerConfig
) -> None:
    first = localkafka.start(own_ports)
    assert first.started and first.version == localkafka.KAFKA_VERSION
    second = localkafka.start(own_ports)
    assert (second.started, second.pid) == (False, first.pid)
    assert _java_processes(own_ports) == [first.pid]
    assert localkafka.status(own_ports) == second

    assert localkafka.stop(own_ports) is True
    assert _java_processes(own_ports) == []
    assert not broker_answers(own_ports.bootstrap, timeout=1.0)
    assert localkafka.stop(own_ports) is False
    assert localkafka.status(own_ports) is None


def test_a_port_held_by_something_else_is_one_line(
    kafka_broker: localkafka.BrokerInfo, own_ports: localkafka.BrokerConfig
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", own_ports.port))
        squatter.listen()
        with pytest.raises(KafkaUnavailableError, match=r"port \d+ on 127.0.0.1 is taken by"):
            localkafka.start(own_ports)
    assert _java_processes(own_ports) == []


def test_run_keeps_a_running_broker_and_returns_the_command_exit_code(
    kafka_broker: localkafka.BrokerInfo,
) -> None:
    env = worker_env({"STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}"})
    command = [sys.executable, "-m", "stream_app.localkafka", "run", "--"]
    done = subprocess.run(  # noqa: S603
        [*command, sys.executable, "-c", "raise SystemExit(3)"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "already running" in done.stderr or "not started by stream-app" in done.stderr
    assert broker_answers(kafka_broker.bootstrap)
