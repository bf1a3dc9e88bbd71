"""`stream-app gate` without a broker: pass and fail with their exit codes, no registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.dummy import DummyClassifier

from stream_app.commands.gate import gate
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.bundle import save_bundle
from stream_app.lifecycle.demo_model import demo_data, train_demo_bundle

# No broker listens here: a command that reached for Kafka would fail, not pass.
NO_BROKER = {"STREAM_BROKER_URL": "kafka://127.0.0.1:1", "STREAM_ALLOW_UNSIGNED_BUNDLES": "true"}


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "good"
    train_demo_bundle(out, name="conversion", version="1.0.0", seed=1, n_rows=400)
    return out


def constant_bundle(directory: Path) -> Path:
    """A bundle that predicts "no conversion" for everyone: the gate must refuse it."""
    model = DummyClassifier(strategy="constant", constant=0)
    model.fit(np.zeros((2, len(FEATURE_NAMES))), [0, 1])
    metadata = {"name": "conversion", "version": "0.0.1", "features": list(FEATURE_NAMES)}
    save_bundle(model, metadata, directory)
    return directory


def test_gate_passes_a_good_bundle_with_exit_code_0_and_no_broker(good_bundle: Path) -> None:
    done = CliRunner().invoke(gate, [str(good_bundle), "--validation", "demo:7"], env=NO_BROKER)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "gate for conversion 1.0.0"
    assert [line.split(":")[0].strip() for line in lines[1:-1]] == [
        "pass  required_methods",
        "pass  input_shape",
        "pass  latency_p95",
        "pass  accuracy",
        "pass  precision",
        "pass  roc_auc",
    ]
    assert lines[-1] == "gate passed"


def test_gate_fails_a_constant_model_with_exit_code_1(tmp_path: Path) -> None:
    bundle = constant_bundle(tmp_path / "constant")
    args = [str(bundle), "--validation", "demo:7", "--json"]
    done = CliRunner().invoke(gate, args, env=NO_BROKER)
    assert done.exit_code == 1, done.output
    report = json.loads(done.output)
    assert report["passed"] is False
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert {"precision", "roc_auc"} <= failed


def test_gate_reads_x_and_y_from_an_npz_file(good_bundle: Path, tmp_path: Path) -> None:
    data = demo_data(2000, seed=7)
    np.savez(tmp_path / "valid.npz", X=data.features, y=data.labels)
    from_file = CliRunner().invoke(
        gate, [str(good_bundle), "--validation", str(tmp_path / "valid.npz"), "--json"],
        env=NO_BROKER,
    )  # fmt: skip
    from_demo = CliRunner().invoke(
        gate, [str(good_bundle), "--validation", "demo:7", "--json"], env=NO_BROKER
    )
    assert from_file.exit_code == 0, from_file.output
    # The same rows give the same metrics (latency aside, which is measured each time).
    metrics = json.loads(from_file.output)["metrics"]
    assert metrics["accuracy"] == json.loads(from_demo.output)["metrics"]["accuracy"]


def test_gate_that_cannot_run_exits_2_with_one_line(good_bundle: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", features=np.zeros((3, 10)))
    done = CliRunner().invoke(
        gate, [str(good_bundle), "--validation", str(tmp_path / "bad.npz")], env=NO_BROKER
    )
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        f"Error: {tmp_path / 'bad.npz'}: the .npz needs arrays X and y, missing 'X is not a "
        "file in the archive'"
    ]


def test_gate_with_a_baseline_and_no_broker_exits_2(good_bundle: Path) -> None:
    done = CliRunner().invoke(
        gate, [str(good_bundle), "--validation", "demo:7", "--baseline", "0.9.0"],
        env={**NO_BROKER},
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    assert done.output.startswith("Error: ")
