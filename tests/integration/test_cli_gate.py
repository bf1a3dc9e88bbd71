"""`stream-app gate --baseline` against the real registry: it reads, and writes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream_app.commands.gate import gate
from stream_app.config import load_settings
from stream_app.lifecycle.demo_model import train_demo_bundle
from stream_app.localkafka import BrokerInfo
from stream_app.registry_kafka import read_registry_events
from tests.integration.test_registry_cli import registry_cli
from tests.utils.keys import KeySet
from tests.utils.worker import worker_env

pytestmark = pytest.mark.integration


def test_gate_with_a_baseline_reads_the_registry_and_writes_nothing(
    kafka_broker: BrokerInfo, run_id: str, tmp_path: Path, keys: KeySet
) -> None:
    env = {
        "STREAM_BROKER_URL": f"kafka://{kafka_broker.bootstrap}",
        "STREAM_TOPIC_PREFIX": f"{run_id}.",
        "STREAM_BUNDLE_ROOT": str(tmp_path),
        **keys.writer_env(),
    }
    for name, version, seed in (("a", "1.0.0", 1), ("b", "1.1.0", 2)):
        train_demo_bundle(tmp_path / name, name="conversion", version=version, seed=seed,
                          n_rows=400, signing_key=keys.bundle_key)  # fmt: skip
    assert registry_cli(worker_env(env), "register", str(tmp_path / "a")).returncode == 0
    settings = load_settings({}, broker_url=env["STREAM_BROKER_URL"], topic_prefix=f"{run_id}.")
    before = asyncio.run(read_registry_events(settings))

    args = [str(tmp_path / "b"), "--validation", "demo:7", "--baseline", "1.0.0"]
    done = CliRunner().invoke(gate, args, env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == "gate for conversion 1.1.0 against 1.0.0"
    assert "  pass  no_regression: " in done.output
    unknown = CliRunner().invoke(gate, [*args[:3], "--baseline", "9.9.9"], env=env)
    assert (unknown.exit_code, unknown.output) == (
        2,
        "Error: unknown version 9.9.9 of 'conversion'\n",
    )
    assert asyncio.run(read_registry_events(settings)) == before
