"""Demo model: the synthetic generator, the true probabilities, the trained bundle, the CLI."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.ensemble import RandomForestClassifier

from schemas.events import CATEGORIES
from stream_app.commands.bundle import bundle as bundle_group
from stream_app.errors import BundleIntegrityError
from stream_app.inference.features import (
    CATEGORICAL_DRIFT_COLUMN,
    FEATURE_NAMES,
    NUMERIC_FEATURES,
    build_features,
)
from stream_app.inference.score import BatchScorer
from stream_app.lifecycle.bundle import Bundle, load_bundle
from stream_app.lifecycle.demo_model import (
    DEFAULT_START,
    conversion_probability,
    demo_data,
    synthetic_requests,
    train_demo_bundle,
    train_demo_model,
)
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.monitoring.profile import ReferenceProfile

TRAINED_AT = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("demo") / "conversion-1.0.0"
    train_demo_bundle(out, name="conversion", version="1.0.0", seed=11, trained_at=TRAINED_AT)
    return load_bundle(out)


# --- generator --------------------------------------------------------------------------


def test_same_seed_same_requests_other_seed_other_requests() -> None:
    first = synthetic_requests(50, seed=4)
    assert first == synthetic_requests(50, seed=4)
    assert [r.age for r in first] != [r.age for r in synthetic_requests(50, seed=5)]


def test_requests_are_stamped_and_identified() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    batch = synthetic_requests(4, seed=2, start=start, interval_seconds=0.5, n_clients=2)
    assert [r.timestamp for r in batch] == [start + timedelta(seconds=i / 2) for i in range(4)]
    assert [r.request_id for r in batch] == [f"req-2-{i:07d}" for i in range(4)]
    assert {r.client_id for r in batch} <= {"client-0", "client-1"}
    assert all(r.user_id.startswith("USR") for r in batch)
    assert synthetic_requests(0, seed=2) == []


def test_marginals_follow_the_documented_story() -> None:
    batch = synthetic_requests(20_000, seed=8)
    x = build_features(batch)
    assert x[:, 0].min() >= 18 and x[:, 0].max() <= 80
    assert abs(x[:, 0].mean() - 38) < 0.5
    assert abs(x[:, 1].mean() - 5) < 0.1  # 1 + Poisson(4)
    assert abs(np.median(np.log(x[:, 5])) - np.log(12)) < 0.03
    shares = x[:, 6:].mean(axis=0)
    np.testing.assert_allclose(shares, [0.35, 0.25, 0.25, 0.15], atol=0.01)


@pytest.mark.parametrize(
    ("shift", "column", "delta", "unchanged"),
    [
        ({"age": 10}, 0, 10.0, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ({"age": -5}, 0, -5.0, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        # More purchases per user: the amounts are redrawn, nothing else moves.
        ({"purchase_count": 3}, 1, 3.0, [0, 5, 6, 7, 8, 9]),
        ({"purchase_amount": 20}, 3, 20.0, [0, 1, 5, 6, 7, 8, 9]),
        ({"session_duration_minutes": 8}, 5, 8.0, [0, 1, 2, 3, 4, 6, 7, 8, 9]),
    ],
)
def test_shift_moves_one_field_by_its_offset(
    shift: dict[str, float], column: int, delta: float, unchanged: list[int]
) -> None:
    base = build_features(synthetic_requests(400, seed=6))
    moved = build_features(synthetic_requests(400, seed=6, shift=shift))
    np.testing.assert_allclose(moved[:, column] - base[:, column], delta, atol=0.011)
    np.testing.assert_array_equal(moved[:, unchanged], base[:, unchanged])


def test_category_weights_replace_the_mix() -> None:
    batch = synthetic_requests(200, seed=1, category_weights=[0, 0, 1, 0])
    assert {r.category_preference for r in batch} == {"home"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shift": {"email": 1}}, "cannot shift 'email'"),
        ({"shift": {"age": float("nan")}}, "must be finite"),
        ({"category_weights": [1, 1]}, "category_weights must be 4"),
        ({"category_weights": [1, -1, 1, 1]}, "non-negative"),
        ({"category_weights": [0, 0, 0, 0]}, "positive sum"),
        ({"n_clients": 0}, "n_clients >= 1"),
    ],
)
def test_generator_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic_requests(10, seed=0, **kwargs)


# --- true probabilities -----------------------------------------------------------------

MEDIAN_ROW = [38.0, 5.0, 135.0, 27.0, 40.0, 12.0, 0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("column", "value", "z"),
    [
        (None, None, -1.4),
        (0, 48.0, -1.4 + 0.5),
        (1, 5.0 * np.e, -1.4 + 1.3),
        (3, 27.0 / np.e, -1.4 - 1.1),
        (5, 12.0 * np.e, -1.4 + 1.6),
    ],
)
def test_conversion_probability_is_the_documented_logistic(
    column: int | None, value: float | None, z: float
) -> None:
    row = np.array([MEDIAN_ROW])
    if column is not None:
        row[0, column] = value
    assert conversion_probability(row)[0] == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-12)


@pytest.mark.parametrize(
    ("category", "effect"), list(zip(CATEGORIES, [0.9, 0.0, -0.7, 0.4], strict=True))
)
def test_category_effects(category: str, effect: float) -> None:
    row = np.array([MEDIAN_ROW])
    row[0, 6:] = [1.0 if c == category else 0.0 for c in CATEGORIES]
    assert conversion_probability(row)[0] == pytest.approx(1 / (1 + np.exp(1.4 - effect)))


def test_labels_are_drawn_from_the_true_probabilities() -> None:
    data = demo_data(20_000, seed=9)
    assert data.labels.dtype == np.int64
    assert abs(data.labels.mean() - conversion_probability(data.features).mean()) < 0.01
    assert data.features.tolist() == build_features(list(data.requests)).tolist()


# --- training and the bundle ------------------------------------------------------------


def test_training_is_reproducible() -> None:
    _, first, _ = train_demo_model(seed=3, n_rows=1000)
    _, second, _ = train_demo_model(seed=3, n_rows=1000)
    assert first == second


def test_bundle_holds_the_served_forest(demo_bundle: Bundle) -> None:
    model = demo_bundle.model
    assert isinstance(model, RandomForestClassifier)
    assert (model.n_estimators, model.n_jobs, model.random_state) == (50, 1, 11)
    meta = demo_bundle.metadata
    assert (meta["name"], meta["version"]) == ("conversion", "1.0.0")
    assert meta["features"] == list(FEATURE_NAMES)
    assert meta["trained_at"] == meta["created_at"] == "2026-02-01T09:30:00Z"
    assert demo_bundle.warnings == ()


def test_bundle_metrics_and_directions(demo_bundle: Bundle) -> None:
    metrics = demo_bundle.metadata["metrics"]
    assert set(metrics) == {"accuracy", "precision", "recall", "roc_auc"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["roc_auc"] > 0.7  # the true probabilities reach about 0.81
    assert demo_bundle.metadata["metric_directions"] == dict.fromkeys(metrics, "higher")


def test_bundle_metrics_and_directions_register_as_they_are(demo_bundle: Bundle) -> None:
    registry = ModelRegistry()
    meta = demo_bundle.metadata
    version = registry.register(
        demo_bundle.name,
        demo_bundle.version,
        meta["metrics"],
        demo_bundle.directory,
        digest=demo_bundle.digest,
        directions=meta["metric_directions"],
    )
    assert version.metrics == meta["metrics"]
    assert version.directions == dict.fromkeys(meta["metrics"], "higher")
    assert registry.best(demo_bundle.name, "roc_auc") == version


def test_reference_profile_covers_the_drift_columns(demo_bundle: Bundle) -> None:
    assert demo_bundle.reference_profile is not None
    profile = ReferenceProfile.from_dict(demo_bundle.reference_profile)
    # Canonical metadata JSON sorts keys, so the profile comes back in name order.
    assert sorted(profile.features) == sorted([*NUMERIC_FEATURES, CATEGORICAL_DRIFT_COLUMN])
    assert profile.numeric["age"].count == 3000  # the training split of 4000 rows
    frequencies = profile.categorical[CATEGORICAL_DRIFT_COLUMN].frequencies
    assert frequencies["electronics"] == pytest.approx(0.35, abs=0.03)


def test_bundle_scores_synthetic_requests(demo_bundle: Bundle) -> None:
    batch = synthetic_requests(64, seed=12, start=DEFAULT_START)
    predictions = BatchScorer(demo_bundle).score(batch)
    expected = demo_bundle.model.predict_proba(build_features(batch))[:, 1]
    assert [p.score for p in predictions] == pytest.approx(expected.tolist())
    assert {p.model_version for p in predictions} == {"1.0.0"}


# --- the command ------------------------------------------------------------------------


def test_train_demo_command_writes_a_loadable_bundle(tmp_path: Path) -> None:
    out = tmp_path / "b"
    args = ["train-demo", "--out", str(out), "--name", "conv", "--version", "2.0.0"]
    result = CliRunner().invoke(bundle_group, [*args, "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    loaded = load_bundle(out)
    assert summary["digest"] == loaded.digest
    assert (summary["name"], summary["version"]) == ("conv", "2.0.0")
    assert loaded.model.random_state == 5

    again = CliRunner().invoke(bundle_group, args)
    assert again.exit_code == 1
    assert "overwrite" in again.output
    assert load_bundle(out).digest == loaded.digest
    replaced = CliRunner().invoke(bundle_group, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output


def test_train_demo_command_needs_name_and_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(bundle_group, ["train-demo", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert "--name" in result.output


def test_train_demo_command_signs_with_the_configured_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = bytes(range(32))
    monkeypatch.setenv("STREAM_BUNDLE_SIGNING_KEY", base64.b64encode(key).decode())
    out = tmp_path / "signed"
    args = ["train-demo", "--out", str(out), "--name", "conv", "--version", "1.0.0"]
    result = CliRunner().invoke(bundle_group, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["signed"] is True
    assert load_bundle(out, signing_key=key).version == "1.0.0"
    with pytest.raises(BundleIntegrityError, match="signature"):
        load_bundle(out, signing_key=bytes(32))


def test_train_demo_command_refuses_a_short_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_BUNDLE_SIGNING_KEY", base64.b64encode(b"short").decode())
    args = ["train-demo", "--out", str(tmp_path / "b"), "--name", "c", "--version", "1.0.0"]
    result = CliRunner().invoke(bundle_group, args)
    assert result.exit_code == 1
    assert "STREAM_BUNDLE_SIGNING_KEY" in result.output
    assert not (tmp_path / "b").exists()
