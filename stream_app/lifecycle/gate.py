"""The pre-deploy gate: run a candidate model through named checks before promotion.

Every check is a value (``GateCheck``); a model that raises fails its check instead
of crashing the gate. ``ModelRegistry.promote`` accepts only a report that passed and
that names (``identity``) the model name and version being promoted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_app.lifecycle.gate_config import GateConfig, parse_gate_config
from stream_app.lifecycle.gate_report import GateCheck, GateReport, ModelIdentity
from stream_app.lifecycle.gate_shape import find_method, methods_check, raised, shape_check

__all__ = [
    "QUALITY_METRICS",
    "GateCheck",
    "GateReport",
    "ModelIdentity",
    "Timer",
    "quality_metrics",
    "validate_for_deployment",
]

Timer = Callable[[], float]

QUALITY_METRICS = ("accuracy", "precision", "recall", "roc_auc")


def validate_for_deployment(
    model: Any,
    X: Any,
    y: Any,
    config: Mapping[str, Any],
    *,
    baseline: Any = None,
    clock: Timer = time.perf_counter,
    identity: ModelIdentity | None = None,
) -> GateReport:
    """Run the gate: methods, shapes, latency, throughput, quality, no regression.

    ``X`` and binary labels ``y`` (0/1) are the validation set; ``config`` is read by
    ``parse_gate_config`` (GateConfigError when wrong). ``clock`` returns seconds and
    times the single-row latency runs and the batch call. ``baseline`` is the model in
    production: no quality metric may drop below it by more than ``max_metric_drop``.
    ``identity`` names what was judged (name, version, ideally the bundle digest); a
    report without name and version cannot promote anything.
    When the shape check fails, later checks are reported failed and skipped.

    Example:
        >>> class Threshold:
        ...     def predict(self, X):
        ...         return (X[:, 0] > 0).astype(int)
        >>> X = np.array([[-1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [-2.0, 0.0]])
        >>> report = validate_for_deployment(Threshold(), X, [0, 1, 1, 0],
        ...     {"min_accuracy": 0.9, "min_precision": 0.9, "max_latency_ms": 1000,
        ...      "required_methods": ["predict"], "input_shape": (None, 2)})
        >>> report.passed, report.metrics["accuracy"]
        (True, 1.0)
    """
    cfg = parse_gate_config(config)
    features, labels = _validation_set(X, y)
    checks = [methods_check(model, cfg.required_methods)]
    shape, predicted = shape_check(model, features, cfg.input_shape)
    checks.append(shape)
    if predicted is None:
        checks.extend(_skipped(cfg, baseline is not None))
        return GateReport(tuple(checks), {}, identity)

    latency, p50, p95 = _latency_check(model, features, cfg, clock)
    throughput, rows_per_s = _throughput(model, features, cfg, clock)
    metrics: dict[str, float | None] = {
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "throughput_per_s": rows_per_s,
    }
    quality = _quality(model, features, labels, predicted)
    metrics.update(quality)
    checks.append(latency)
    if throughput is not None:
        checks.append(throughput)
    checks.extend(_threshold_checks(quality, cfg))
    if baseline is not None:
        check, base = _regression_check(baseline, features, labels, quality, cfg)
        checks.append(check)
        metrics.update({f"baseline_{k}": v for k, v in base.items()})
    return GateReport(tuple(checks), metrics, identity)


def _validation_set(X: Any, y: Any) -> tuple[NDArray[Any], NDArray[Any]]:
    """The validation arrays; a wrong set is the caller's error, not the model's."""
    features = np.asarray(X)
    labels = np.asarray(y)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {features.shape}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"y must be 1-D with {features.shape[0]} labels, got {labels.shape}")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("y must hold binary labels 0 and 1")
    return features, labels


def _latency_check(
    model: Any, features: NDArray[Any], cfg: GateConfig, clock: Timer
) -> tuple[GateCheck, float | None, float | None]:
    """Single-row predict, ``latency_runs`` times, cycling through the rows."""
    limit = cfg.max_latency_ms
    try:
        model.predict(features[:1])  # warm-up: first calls pay one-off setup costs
        times: list[float] = []
        for i in range(cfg.latency_runs):
            row = features[i % len(features)][None, :]
            start = clock()
            model.predict(row)
            times.append((clock() - start) * 1000.0)
    except Exception as exc:
        return GateCheck("latency_p95", False, raised("predict", exc), None, limit), None, None
    p50, p95 = (float(v) for v in np.percentile(times, [50, 95]))
    passed = p95 <= limit
    message = f"p95 {p95:.3f} ms over {cfg.latency_runs} runs {'<=' if passed else '>'} {limit} ms"
    return GateCheck("latency_p95", passed, message, p95, limit), p50, p95


def _throughput(
    model: Any, features: NDArray[Any], cfg: GateConfig, clock: Timer
) -> tuple[GateCheck | None, float | None]:
    """Rows per second of one batch call; a check only when a minimum is configured."""
    minimum = cfg.min_throughput_per_s
    try:
        start = clock()
        model.predict(features)
        elapsed = clock() - start
    except Exception as exc:
        return GateCheck("throughput", False, raised("predict", exc), None, minimum), None
    rate = len(features) / elapsed if elapsed > 0 else math.inf
    if minimum is None:
        return None, rate
    passed = rate >= minimum
    message = f"{rate:.1f} rows/s {'>=' if passed else '<'} {minimum} rows/s"
    return GateCheck("throughput", passed, message, rate, minimum), rate


def quality_metrics(labels: Any, predicted: Any, scores: Any = None) -> dict[str, float | None]:
    """Accuracy, precision, recall and, given positive-class scores, ROC AUC (binary).

    None marks a metric that is undefined: predictions that are not 0/1 labels, or a
    single class in ``labels`` for ROC AUC.

    Example:
        >>> quality_metrics([0, 1, 1, 0], [0, 1, 0, 0], [0.1, 0.9, 0.4, 0.3])
        {'accuracy': 0.75, 'precision': 1.0, 'recall': 0.5, 'roc_auc': 1.0}
    """
    from sklearn import metrics  # imported here so the registry can import this module cheaply

    try:
        out: dict[str, float | None] = {
            "accuracy": float(metrics.accuracy_score(labels, predicted)),
            "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
            "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
            "roc_auc": None,
        }
    except Exception:
        # Predictions that are not 0/1 labels cannot be scored: every metric is undefined.
        return dict.fromkeys(QUALITY_METRICS)
    if scores is not None and len(np.unique(labels)) == 2:
        try:
            out["roc_auc"] = float(metrics.roc_auc_score(labels, scores))
        except Exception:  # noqa: S110 - an undefined AUC is reported as None, not raised
            pass
    return out


def _quality(
    model: Any, features: NDArray[Any], labels: NDArray[Any], predicted: NDArray[Any]
) -> dict[str, float | None]:
    """The model's quality metrics; ROC AUC only when it has a working predict_proba."""
    scores = None
    if find_method(model, "predict_proba")[0] is not None and len(np.unique(labels)) == 2:
        try:
            scores = _positive_scores(model, features)
        except Exception:  # noqa: S110 - an undefined AUC is reported as None, not raised
            pass
    return quality_metrics(labels, predicted, scores)


def _positive_scores(model: Any, features: NDArray[Any]) -> NDArray[Any]:
    proba = np.asarray(model.predict_proba(features), dtype=float)
    if proba.ndim == 1:
        return proba
    classes = list(getattr(model, "classes_", range(proba.shape[1])))
    return proba[:, classes.index(1)]


def _threshold_checks(quality: Mapping[str, float | None], cfg: GateConfig) -> list[GateCheck]:
    wanted: list[tuple[str, float | None]] = [
        ("accuracy", cfg.min_accuracy),
        ("precision", cfg.min_precision),
        ("recall", cfg.min_recall),
        ("roc_auc", cfg.min_roc_auc),
    ]
    checks = []
    for name, minimum in wanted:
        if minimum is None:
            continue
        value = quality[name]
        if value is None:
            checks.append(GateCheck(name, False, f"{name} could not be computed", None, minimum))
            continue
        passed = value >= minimum
        message = f"{name} {value:.4f} {'>=' if passed else '<'} {minimum}"
        checks.append(GateCheck(name, passed, message, value, minimum))
    return checks


def _regression_check(
    baseline: Any,
    features: NDArray[Any],
    labels: NDArray[Any],
    quality: Mapping[str, float | None],
    cfg: GateConfig,
) -> tuple[GateCheck, dict[str, float | None]]:
    """No quality metric may fall below the baseline's by more than max_metric_drop."""
    tolerance = cfg.max_metric_drop
    try:
        base = _quality(baseline, features, labels, np.asarray(baseline.predict(features)))
    except Exception as exc:  # without the baseline's figures the check fails closed
        return GateCheck("no_regression", False, raised("baseline", exc), None, tolerance), {}
    drops = {
        name: base_value - value
        for name in QUALITY_METRICS
        if (base_value := base[name]) is not None and (value := quality[name]) is not None
    }
    if not drops:
        message = "no metric computable for both candidate and baseline"
        return GateCheck("no_regression", False, message, None, tolerance), base
    worst = max(drops, key=lambda k: drops[k])
    passed = drops[worst] <= tolerance
    detail = ", ".join(f"{k} {d:+.4f}" for k, d in drops.items())
    message = f"drop vs baseline ({detail}); largest {worst} {'<=' if passed else '>'} {tolerance}"
    return GateCheck("no_regression", passed, message, drops[worst], tolerance), base


def _skipped(cfg: GateConfig, with_baseline: bool) -> list[GateCheck]:
    names = ["latency_p95"]
    names += ["throughput"] if cfg.min_throughput_per_s is not None else []
    names += ["accuracy", "precision"]
    names += ["recall"] if cfg.min_recall is not None else []
    names += ["roc_auc"] if cfg.min_roc_auc is not None else []
    names += ["no_regression"] if with_baseline else []
    reason = "skipped: the input_shape check failed"
    return [GateCheck(name, False, reason, skipped=True) for name in names]
