"""Kafka over SASL_SSL: a broker of its own with a TLS listener and SCRAM users.

The module's broker runs next to the session's one, on free ports and in its own run
directory, with PLAINTEXT (for its readiness check) and SASL_SSL listeners; its
certificate is signed by a CA made here, and its SCRAM users are written when its
storage is formatted, as a managed cluster would have them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stream_app import localkafka
from stream_app.config import load_settings
from stream_app.errors import ConfigError
from stream_app.kafka_auth import client_security
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.registry_kafka import KafkaRegistryStore
from stream_app.topics import topic_names
from tests.utils.kafka_io import produce, read_until
from tests.utils.tls import make_broker_tls
from tests.utils.worker import REPO_ROOT, WorkerProcess, free_port, worker_env

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "alice-s3cret"


@dataclass(frozen=True)
class TlsBroker:
    """The SASL_SSL listener of the module's broker and the CA its certificate is from."""

    bootstrap: str
    ca_file: Path

    def settings(self, password: str = PASSWORD) -> dict[str, str]:
        """STREAM_ variables of a client logging in as USER with SCRAM-SHA-256."""
        return {
            "STREAM_BROKER_URL": f"kafka://{self.bootstrap}",
            "STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "STREAM_KAFKA_SASL_USERNAME": USER,
            "STREAM_KAFKA_SASL_PASSWORD": password,
            "STREAM_KAFKA_SSL_CAFILE": str(self.ca_file),
        }


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    tls = make_broker_tls(tmp_path_factory.mktemp("tls"))
    listener = localkafka.SaslSslListener(free_port(), tls.keystore, ((USER, PASSWORD),))
    config = localkafka.BrokerConfig(
        home=localkafka.default_home(),
        port=free_port(),
        controller_port=free_port(),
        sasl_ssl=listener,
    )
    try:
        with localkafka.running_broker(config):
            yield TlsBroker(f"{config.host}:{listener.port}", tls.ca_file)
    finally:
        shutil.rmtree(config.run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", n_rows=200)
    return out


async def test_a_worker_scores_a_request_over_sasl_ssl(
    tls_broker: TlsBroker,
    start_worker: Callable[..., WorkerProcess],
    run_id: str,
    bundle_dir: Path,
) -> None:
    env = {**tls_broker.settings(), "STREAM_APP_ID": f"tls-{run_id}", "STREAM_PARTITIONS": "1"}
    settings = load_settings(env, topic_prefix=f"{run_id}.")
    names = topic_names(settings)
    security = client_security(settings)
    start_worker(
        {**env, "TEST_BUNDLE_DIR": str(bundle_dir)},
        module="tests.integration.pipeline_app",
        wait_topics={names["prediction_requests"]: 1},
    )
    request = {
        "request_id": "tls-1",
        "client_id": "client-tls",
        "timestamp": "2026-01-01T10:00:00Z",
        "user_id": "USR00001",
        "age": 30,
        "purchase_history": [10.0],
        "category_preference": "home",
        "session_duration_minutes": 3.0,
    }
    message = (b"client-tls", json.dumps(request).encode())
    await produce(tls_broker.bootstrap, names["prediction_requests"], [message], security=security)

    got = await read_until(
        tls_broker.bootstrap,
        [names["predictions"]],
        lambda records: len(records[names["predictions"]]) >= 1,
        idle_seconds=0.5,
        timeout=90,
        security=security,
    )
    [prediction] = got[names["predictions"]]
    assert json.loads(prediction.value)["request_id"] == "tls-1"


def test_a_wrong_password_stops_the_worker_with_one_line_naming_the_setting(
    tls_broker: TlsBroker, tmp_path: Path, bundle_dir: Path
) -> None:
    env = {
        **tls_broker.settings("not-the-password"),
        "STREAM_DATA_DIR": str(tmp_path / "data"),
        "STREAM_WEB_PORT": str(free_port()),
        "TEST_BUNDLE_DIR": str(bundle_dir),
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.integration.pipeline_app", "worker"],
        cwd=REPO_ROOT, env=worker_env(env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("stream-app: the broker at ")
    assert f"refused the SASL login of STREAM_KAFKA_SASL_USERNAME={USER}" in line
    assert "check STREAM_KAFKA_SASL_PASSWORD" in line
    assert "not-the-password" not in line


def test_the_registry_store_reads_and_refuses_over_sasl_ssl(
    tls_broker: TlsBroker, run_id: str
) -> None:
    env = {**tls_broker.settings(), "STREAM_TOPIC_PREFIX": f"{run_id}."}
    assert KafkaRegistryStore(load_settings(env), timeout=30).events() == []
    wrong = load_settings({**env, "STREAM_KAFKA_SASL_PASSWORD": "not-the-password"})
    with pytest.raises(ConfigError, match="check STREAM_KAFKA_SASL_PASSWORD"):
        KafkaRegistryStore(wrong, timeout=30).events()
