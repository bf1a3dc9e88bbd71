"""The demo conversion model: synthetic users, their true conversion odds, a trained bundle.

Tests, the pre-deploy gate, the benchmarks and the demo all draw requests from
:func:`synthetic_requests`, so they see the distribution the model was trained on;
``shift`` moves it to provoke drift.

Generative story, per user (numpy Generator seeded with ``seed``):

- age: Normal(38, 12) rounded and clipped to 18..80;
- purchase_count: 1 + Poisson(4); each amount LogNormal(mu=3.3, sigma=0.7), rounded to
  cents (median about 27);
- category_preference: electronics, clothing, home, sports with weights .35/.25/.25/.15;
- session_duration_minutes: LogNormal(ln 12, 0.6), rounded to 0.01.

The probability of conversion is ``sigmoid(z)`` with (see :func:`conversion_probability`)::

    z = -1.4 + 0.05 (age - 38) + 1.3 ln(purchase_count / 5) + 1.1 ln(purchase_mean / 27)
        + 1.6 ln(session_duration_minutes / 12) + {electronics +0.9, clothing 0,
                                                   home -0.7, sports +0.4}

About 32% of users convert; the true probabilities rank them with a ROC AUC near 0.81,
the ceiling for any model trained on these data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from schemas.events import CATEGORIES, PredictionRequest
from stream_app.inference.features import (
    CATEGORICAL_DRIFT_COLUMN,
    FEATURE_NAMES,
    build_features,
    drift_columns_from_matrix,
)
from stream_app.lifecycle.bundle import BundleInfo, save_bundle
from stream_app.lifecycle.gate import QUALITY_METRICS, quality_metrics
from stream_app.lifecycle.registry_state import Direction
from stream_app.monitoring.profile import ReferenceProfile

__all__ = [
    "CATEGORY_WEIGHTS",
    "DEFAULT_START",
    "METRIC_DIRECTIONS",
    "SHIFTABLE",
    "DemoData",
    "conversion_probability",
    "demo_data",
    "synthetic_requests",
    "train_demo_bundle",
    "train_demo_model",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORY_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.25, 0.15)
SHIFTABLE = ("age", "purchase_count", "purchase_amount", "session_duration_minutes")
# The registry's vocabulary, so a bundle's metrics and directions register unchanged.
METRIC_DIRECTIONS: Mapping[str, Direction] = dict.fromkeys(QUALITY_METRICS, "higher")
_CATEGORY_EFFECT = np.array([0.9, 0.0, -0.7, 0.4])  # in CATEGORIES order
_FOREST_PARAMS: dict[str, Any] = {"n_estimators": 50, "min_samples_leaf": 10, "n_jobs": 1}


@dataclass(frozen=True)
class DemoData:
    """Synthetic requests with their feature matrix and drawn conversion labels (0/1)."""

    requests: tuple[PredictionRequest, ...]
    features: np.ndarray
    labels: np.ndarray


def conversion_probability(features: np.ndarray) -> np.ndarray:
    """The true conversion probability of each row of a feature matrix (module docstring).

    Example:
        >>> row = np.array([[38.0, 5.0, 135.0, 27.0, 40.0, 12.0, 0.0, 1.0, 0.0, 0.0]])
        >>> round(float(conversion_probability(row)[0]), 4)  # sigmoid(-1.4)
        0.1978
    """
    z = (
        -1.4
        + 0.05 * (features[:, 0] - 38.0)
        + 1.3 * np.log(features[:, 1] / 5.0)
        + 1.1 * np.log(features[:, 3] / 27.0)
        + 1.6 * np.log(features[:, 5] / 12.0)
        + features[:, 6:10] @ _CATEGORY_EFFECT
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def synthetic_requests(
    n: int,
    *,
    seed: int,
    start: datetime = DEFAULT_START,
    interval_seconds: float = 1.0,
    shift: Mapping[str, float] | None = None,
    category_weights: Sequence[float] | None = None,
    n_clients: int = 8,
) -> list[PredictionRequest]:
    """Draw ``n`` valid requests, the i-th stamped ``start + i * interval_seconds``.

    ``shift`` adds an offset to a field (keys in SHIFTABLE; purchase_amount shifts every
    amount), clipped back into the schema's range; ``category_weights`` replaces
    CATEGORY_WEIGHTS. For dicts use ``r.model_dump(mode="json")``.

    Example:
        >>> [r.age for r in synthetic_requests(3, seed=1)]
        [30, 43, 33]
        >>> [r.age for r in synthetic_requests(3, seed=1, shift={"age": 10})]
        [40, 53, 43]
    """
    if n < 0 or n_clients < 1:
        raise ValueError(f"n must be >= 0 and n_clients >= 1, got {n}, {n_clients}")
    cols = _draw_columns(n, seed, _offsets(shift), _weights(category_weights))
    step = timedelta(seconds=interval_seconds)
    return [
        PredictionRequest(
            request_id=f"req-{seed}-{i:07d}",
            client_id=f"client-{cols['client'][i] % n_clients}",
            timestamp=start + i * step,
            user_id=f"USR{cols['user'][i]:07d}",
            age=int(cols["age"][i]),
            purchase_history=amounts.tolist(),
            category_preference=CATEGORIES[cols["category"][i]],
            session_duration_minutes=float(cols["session"][i]),
        )
        for i, amounts in enumerate(cols["amounts"])
    ]


def demo_data(
    n: int,
    *,
    seed: int,
    shift: Mapping[str, float] | None = None,
    category_weights: Sequence[float] | None = None,
) -> DemoData:
    """Requests, their feature matrix and labels drawn from the true probabilities.

    Example:
        >>> data = demo_data(200, seed=3)
        >>> data.features.shape, sorted(set(data.labels.tolist()))
        ((200, 10), [0, 1])
    """
    requests = synthetic_requests(n, seed=seed, shift=shift, category_weights=category_weights)
    features = build_features(requests)
    # A separate stream for the labels, so the requests do not depend on whether
    # labels are drawn.
    draws = np.random.default_rng([seed, 1]).random(n)
    labels = (draws < conversion_probability(features)).astype(np.int64)
    return DemoData(tuple(requests), features, labels)


def train_demo_model(
    *, seed: int, n_rows: int = 4000, validation_share: float = 0.25
) -> tuple[RandomForestClassifier, dict[str, float], ReferenceProfile]:
    """Train the forest on synthetic users; metrics come from the held-out rows.

    Returns the model, {accuracy, precision, recall, roc_auc} on the validation split
    and the reference profile of the training split's drift columns.

    Example:
        >>> model, metrics, reference = train_demo_model(seed=0, n_rows=200)
        >>> model.n_estimators, sorted(metrics)
        (50, ['accuracy', 'precision', 'recall', 'roc_auc'])
        >>> all(0.0 <= value <= 1.0 for value in metrics.values())
        True
        >>> "age" in reference.columns
        True
    """
    if not 0.0 < validation_share < 1.0 or n_rows < 20:
        raise ValueError("need n_rows >= 20 and validation_share in (0, 1)")
    data = demo_data(n_rows, seed=seed)
    n_valid = int(round(n_rows * validation_share))
    order = np.random.default_rng([seed, 2]).permutation(n_rows)
    valid, train = order[:n_valid], order[n_valid:]
    model = RandomForestClassifier(random_state=seed, **_FOREST_PARAMS)
    model.fit(data.features[train], data.labels[train])
    y_true = data.labels[valid]
    scores = model.predict_proba(data.features[valid])[:, 1]
    predicted = (scores >= 0.5).astype(np.int64)
    # The gate's own definitions, so the registered metrics and the gate's agree.
    quality = quality_metrics(y_true, predicted, scores)
    metrics = {name: value for name, value in quality.items() if value is not None}
    reference = ReferenceProfile.from_data(
        drift_columns_from_matrix(data.features[train]),
        categorical=(CATEGORICAL_DRIFT_COLUMN,),
    )
    return model, metrics, reference


def train_demo_bundle(
    out_dir: str | Path,
    *,
    name: str,
    version: str,
    seed: int = 0,
    n_rows: int = 4000,
    signing_key: bytes | None = None,
    trained_at: datetime | None = None,
    overwrite: bool = False,
) -> BundleInfo:
    """Train the demo model and save it, with metrics and reference profile, as a bundle.

    ``trained_at`` (default: now, UTC) is both the bundle's trained_at and created_at.
    The metadata's ``metrics`` and ``metric_directions`` go to ``ModelRegistry.register``
    as they are.

    Example:
        >>> import tempfile
        >>> from stream_app.lifecycle.bundle import load_bundle
        >>> from stream_app.lifecycle.registry import ModelRegistry
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     info = train_demo_bundle(f"{tmp}/conversion", name="conversion", version="1.0.0",
        ...                              n_rows=200, trained_at=DEFAULT_START)
        ...     bundle = load_bundle(info.directory)
        >>> bundle.version, bundle.digest == info.digest, bundle.metadata["trained_at"]
        ('1.0.0', True, '2026-01-01T00:00:00Z')
        >>> meta = bundle.metadata
        >>> registered = ModelRegistry().register(
        ...     bundle.name, bundle.version, meta["metrics"], bundle.directory,
        ...     digest=bundle.digest, directions=meta["metric_directions"])
        >>> registered.directions["roc_auc"]
        'higher'
    """
    model, metrics, reference = train_demo_model(seed=seed, n_rows=n_rows)
    moment = trained_at or datetime.now(UTC)
    metadata = {
        "name": name,
        "version": version,
        "features": list(FEATURE_NAMES),
        "trained_at": moment,
        "metrics": metrics,
        "metric_directions": dict(METRIC_DIRECTIONS),
        "training": {
            "estimator": "RandomForestClassifier",
            "params": {**_FOREST_PARAMS, "random_state": seed},
            "seed": seed,
            "rows": n_rows,
            "validation_share": 0.25,
            "data": "stream_app.lifecycle.demo_model.demo_data",
        },
    }
    return save_bundle(
        model,
        metadata,
        out_dir,
        reference=reference,
        signing_key=signing_key,
        created_at=moment,
        overwrite=overwrite,
    )


def _draw_columns(
    n: int, seed: int, offsets: Mapping[str, float], weights: np.ndarray
) -> dict[str, Any]:
    # One independent stream per field: shifting one field (say, drawing more purchases)
    # leaves every other field of every user exactly as it was.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    age_rng, count_rng, amount_rng, category_rng, session_rng, id_rng = streams
    age = np.clip(np.rint(age_rng.normal(38.0, 12.0, n)), 18, 80) + offsets["age"]
    counts = np.maximum(1 + count_rng.poisson(4.0, n) + np.rint(offsets["purchase_count"]), 1)
    counts = counts.astype(int)
    amounts = amount_rng.lognormal(3.3, 0.7, int(counts.sum())) + offsets["purchase_amount"]
    amounts = np.maximum(np.round(amounts, 2), 0.01)
    session = session_rng.lognormal(np.log(12.0), 0.6, n) + offsets["session_duration_minutes"]
    return {
        "age": np.clip(np.rint(age), 13, 120).astype(int),
        "amounts": np.split(amounts, np.cumsum(counts)[:-1]) if n else [],
        "category": category_rng.choice(len(CATEGORIES), size=n, p=weights),
        "session": np.maximum(np.round(session, 2), 0.01),
        "user": id_rng.integers(0, 10_000_000, n),
        "client": id_rng.integers(0, 1 << 30, n),
    }


def _offsets(shift: Mapping[str, float] | None) -> dict[str, float]:
    offsets = dict.fromkeys(SHIFTABLE, 0.0)
    for key, value in (shift or {}).items():
        if key not in offsets:
            raise ValueError(f"cannot shift {key!r}; shiftable fields are {list(SHIFTABLE)}")
        if not np.isfinite(value):
            raise ValueError(f"shift for {key!r} must be finite, got {value!r}")
        offsets[key] = float(value)
    return offsets


def _weights(category_weights: Sequence[float] | None) -> np.ndarray:
    weights = np.asarray(category_weights or CATEGORY_WEIGHTS, dtype=np.float64)
    if weights.shape != (len(CATEGORIES),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"category_weights must be {len(CATEGORIES)} non-negative numbers with a "
            f"positive sum (order {list(CATEGORIES)})"
        )
    return np.asarray(weights / weights.sum(), dtype=np.float64)
