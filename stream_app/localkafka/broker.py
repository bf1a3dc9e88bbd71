"""Start and stop one single-node KRaft broker on 127.0.0.1, and tell whether it runs."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_app.errors import KafkaUnavailableError
from stream_app.kafka_admin import broker_answers
from stream_app.localkafka.files import (
    BrokerConfig,
    jvm_options,
    prepare_run_dir,
    scram_arguments,
)
from stream_app.localkafka.jars import KAFKA_VERSION, ensure_jars, find_java

__all__ = [
    "BrokerInfo",
    "new_cluster_id",
    "running_broker",
    "start",
    "status",
    "stop",
]

# Popen handles of brokers this process started, so stop() can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class BrokerInfo:
    """A broker that answers: its version and pid when it is ours, None otherwise."""

    bootstrap: str
    version: str | None
    pid: int | None
    started: bool

    def describe(self) -> str:
        """One line for people: what answers where, and who started it."""
        if self.pid is None:
            return f"a Kafka broker answers on {self.bootstrap} (not started by stream-app)"
        how = "started now" if self.started else "already running"
        return f"Apache Kafka {self.version} on {self.bootstrap}, pid {self.pid} ({how})"


def status(config: BrokerConfig) -> BrokerInfo | None:
    """The broker answering on the configured port, or None when nothing answers."""
    if not broker_answers(config.bootstrap):
        return None
    state = _read_state(config)
    if state is None:
        return BrokerInfo(config.bootstrap, None, None, started=False)
    return BrokerInfo(config.bootstrap, str(state["version"]), int(state["pid"]), started=False)


def start(config: BrokerConfig, *, timeout: float = 120.0) -> BrokerInfo:
    """Start the broker and wait until metadata answers; a no-op when a broker answers."""
    state = _read_state(config)
    if state is not None:
        return _wait_ready(config, int(state["pid"]), started=False, timeout=timeout)
    found = status(config)
    if found is not None:
        return found
    for port, variable in (
        (config.port, "STREAM_BROKER_URL"),
        (config.controller_port, "STREAM_LOCAL_KAFKA_CONTROLLER_PORT"),
        *([(config.sasl_ssl.port, "SaslSslListener.port")] if config.sasl_ssl else []),
    ):
        if _port_open(config.host, port):
            raise KafkaUnavailableError(
                f"port {port} on {config.host} is taken by something that is not a Kafka "
                f"broker: free it or choose another port with {variable}"
            )
    java = find_java()
    classpath = str(ensure_jars(config.home) / "*")
    prepare_run_dir(config)
    _format_storage(config, java, classpath)
    log = config.log_file.open("wb")
    command = [
        java,
        *jvm_options(config),
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config.properties_file),
    ]
    process = subprocess.Popen(  # noqa: S603 - fixed command built from our own paths
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in the terminal is for us, not the broker
    )
    log.close()
    _CHILDREN[process.pid] = process
    state = {"pid": process.pid, "version": KAFKA_VERSION, "bootstrap": config.bootstrap}
    config.state_file.write_text(json.dumps(state))
    try:
        return _wait_ready(config, process.pid, started=True, timeout=timeout)
    except KafkaUnavailableError:
        stop(config)
        raise


def stop(config: BrokerConfig, *, timeout: float = 30.0) -> bool:
    """Stop our broker (SIGTERM, wait, then SIGKILL); False when none of ours runs."""
    state = _read_state(config)
    if state is None:
        return False
    pid = int(state["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        if not _wait_dead(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid, 10.0)
    config.state_file.unlink(missing_ok=True)
    return True


@contextmanager
def running_broker(config: BrokerConfig) -> Iterator[BrokerInfo]:
    """A broker for the block; stopped afterwards only if the block's start started it."""
    info = start(config)
    try:
        yield info
    finally:
        if info.started:
            stop(config)


def _wait_ready(config: BrokerConfig, pid: int, *, started: bool, timeout: float) -> BrokerInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            config.state_file.unlink(missing_ok=True)
            raise KafkaUnavailableError(
                f"the broker (pid {pid}) exited during start: {_log_tail(config)}"
            )
        if broker_answers(config.bootstrap, timeout=2.0):
            return BrokerInfo(config.bootstrap, KAFKA_VERSION, pid, started=started)
        time.sleep(0.3)
    raise KafkaUnavailableError(
        f"the broker (pid {pid}) did not answer on {config.bootstrap} within {timeout:.0f} s; "
        f"see {config.log_file}"
    )


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _read_state(config: BrokerConfig) -> dict[str, Any] | None:
    """Our broker's state file, or None (a stale file of a dead broker is removed)."""
    try:
        state = json.loads(config.state_file.read_text())
    except (OSError, ValueError):
        return None
    pid = int(state.get("pid", 0))
    if pid > 0 and _alive(pid) and _is_our_broker(pid, config):
        return dict(state)
    config.state_file.unlink(missing_ok=True)
    return None


def _is_our_broker(pid: int, config: BrokerConfig) -> bool:
    # A recycled pid must not get our SIGTERM: check it runs our server.properties.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in argv and str(config.properties_file).encode() in argv


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")  # a zombie has exited already


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, drawn again
    while it starts with "-" (1 draw in 64), which the storage tool would read as an option.

    Example:
        >>> draws = iter([b"\\xf8" + bytes(15), bytes(16)])
        >>> new_cluster_id(lambda: next(draws))
        'AAAAAAAAAAAAAAAAAAAAAA'
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_storage(config: BrokerConfig, java: str, classpath: str) -> None:
    cluster_id = new_cluster_id()
    properties = str(config.properties_file)
    command = [java, *jvm_options(config), "-cp", classpath, "kafka.tools.StorageTool",
               "format", "--cluster-id", cluster_id, "--config", properties,
               *scram_arguments(config)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise KafkaUnavailableError(f"formatting the broker's storage failed: {tail}")


def _log_tail(config: BrokerConfig, lines: int = 3) -> str:
    try:
        text = config.log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"no output in {config.log_file}"
    return " | ".join(text[-lines:]) + f" (full output in {config.log_file})"
