"""The pre-deploy gate's configuration: read from a plain mapping, refused when wrong.

Kept apart from gate.py so the rules for what a valid gate looks like fit on one screen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream_app.errors import GateConfigError

__all__ = [
    "DEFAULT_LATENCY_RUNS",
    "DEFAULT_MAX_METRIC_DROP",
    "GateConfig",
    "parse_gate_config",
]

DEFAULT_LATENCY_RUNS = 100
# An absolute drop of one point (0.01) absorbs the noise of re-scoring the same
# validation set with a retrained model while still catching a real regression.
DEFAULT_MAX_METRIC_DROP = 0.01
MAX_LATENCY_RUNS = 100_000

_REQUIRED = ("min_accuracy", "min_precision", "max_latency_ms", "required_methods", "input_shape")
_OPTIONAL = ("min_recall", "min_roc_auc", "latency_runs", "max_metric_drop", "min_throughput_per_s")


@dataclass(frozen=True)
class GateConfig:
    """A validated gate configuration; build it with ``parse_gate_config``."""

    min_accuracy: float
    min_precision: float
    max_latency_ms: float
    required_methods: tuple[str, ...]
    input_shape: tuple[int | None, int]
    min_recall: float | None = None
    min_roc_auc: float | None = None
    latency_runs: int = DEFAULT_LATENCY_RUNS
    max_metric_drop: float = DEFAULT_MAX_METRIC_DROP
    min_throughput_per_s: float | None = None


def parse_gate_config(config: Mapping[str, Any]) -> GateConfig:
    """Check a gate mapping and turn it into a ``GateConfig``.

    Raises GateConfigError naming the first unknown or missing key, or the value out of
    range with the range allowed.

    Example:
        >>> cfg = parse_gate_config({"min_accuracy": 0.8, "min_precision": 0.75,
        ...     "max_latency_ms": 50, "required_methods": ["predict", "predict_proba"],
        ...     "input_shape": (None, 4)})
        >>> cfg.input_shape, cfg.latency_runs, cfg.max_metric_drop
        ((None, 4), 100, 0.01)
    """
    unknown = sorted(set(config) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        allowed = ", ".join((*_REQUIRED, *_OPTIONAL))
        raise GateConfigError(f"unknown gate config key {unknown[0]!r}; allowed: {allowed}")
    missing = [key for key in _REQUIRED if key not in config]
    if missing:
        raise GateConfigError(f"gate config is missing {', '.join(missing)}")
    return GateConfig(
        min_accuracy=_fraction(config, "min_accuracy"),
        min_precision=_fraction(config, "min_precision"),
        max_latency_ms=_positive(config, "max_latency_ms"),
        required_methods=_methods(config["required_methods"]),
        input_shape=_shape(config["input_shape"]),
        min_recall=_fraction(config, "min_recall") if "min_recall" in config else None,
        min_roc_auc=_fraction(config, "min_roc_auc") if "min_roc_auc" in config else None,
        latency_runs=_runs(config.get("latency_runs", DEFAULT_LATENCY_RUNS)),
        max_metric_drop=(
            _fraction(config, "max_metric_drop")
            if "max_metric_drop" in config
            else DEFAULT_MAX_METRIC_DROP
        ),
        min_throughput_per_s=(
            _positive(config, "min_throughput_per_s") if "min_throughput_per_s" in config else None
        ),
    )


def _number(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    # bool is an int subclass; `True` as a threshold is a typo, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateConfigError(f"{key} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise GateConfigError(f"{key} must be finite, got {value}")
    return float(value)


def _fraction(config: Mapping[str, Any], key: str) -> float:
    value = _number(config, key)
    if not 0.0 <= value <= 1.0:
        raise GateConfigError(f"{key} must be in [0, 1], got {value}")
    return value


def _positive(config: Mapping[str, Any], key: str) -> float:
    value = _number(config, key)
    if value <= 0:
        raise GateConfigError(f"{key} must be > 0, got {value}")
    return value


def _runs(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GateConfigError(f"latency_runs must be an integer, got {type(value).__name__}")
    if not 1 <= value <= MAX_LATENCY_RUNS:
        raise GateConfigError(f"latency_runs must be in [1, {MAX_LATENCY_RUNS}], got {value}")
    return value


def _methods(value: Any) -> tuple[str, ...]:
    # A bare string would iterate as characters: "predict" -> "p", "r", ...
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise GateConfigError("required_methods must be a list of method names")
    if not value or not all(isinstance(m, str) and m.isidentifier() for m in value):
        raise GateConfigError(
            f"required_methods must be a non-empty list of method names, got {list(value)!r}"
        )
    return tuple(value)


def _shape(value: Any) -> tuple[int | None, int]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise GateConfigError(f"input_shape must be (rows or None, features), got {value!r}")
    rows, features = value
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise GateConfigError(f"input_shape rows must be None or an integer >= 1, got {rows!r}")
    if isinstance(features, bool) or not isinstance(features, int) or features < 1:
        raise GateConfigError(f"input_shape features must be an integer >= 1, got {features!r}")
    return rows, features
