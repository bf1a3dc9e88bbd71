"""What the registry commands read and print: options, validation sets, JSON forms.

Kept apart from the click commands so each piece is a plain function with a doctest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_app.errors import RegistryError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.lifecycle.gate import validate_for_deployment
from stream_app.lifecycle.gate_report import GateReport, ModelIdentity

if TYPE_CHECKING:
    from stream_app.lifecycle.bundle import Bundle
    from stream_app.lifecycle.registry import ModelRegistry
    from stream_app.lifecycle.registry_state import ModelVersion

__all__ = [
    "DEFAULT_GATE",
    "DEMO_VALIDATION_ROWS",
    "gate_lines",
    "load_gate_config",
    "load_validation",
    "parse_expected",
    "parse_tags",
    "parse_validation",
    "register_bundle",
    "run_gate",
]

# The gate `promote` runs unless --gate-config overrides keys. The demo forest scores
# about 0.74 accuracy, 0.64 precision and 0.78 ROC AUC on demo users and answers one
# row in about 6 ms; the thresholds leave room for a retrained model and a busy host
# while a constant or inverted model fails. A retrained model may lose up to 0.05 of
# any metric against production before the no-regression check refuses it.
DEFAULT_GATE: dict[str, Any] = {
    "min_accuracy": 0.7,
    "min_precision": 0.55,
    "min_roc_auc": 0.7,
    "max_latency_ms": 250.0,
    "latency_runs": 30,
    "max_metric_drop": 0.05,
    "required_methods": ["predict", "predict_proba"],
    "input_shape": [None, len(FEATURE_NAMES)],
}
DEMO_VALIDATION_ROWS = 2000
_TAG = re.compile(r"^([A-Za-z0-9_.-]{1,64})=(.{0,256})$")


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """``k=v`` options into a mapping; RegistryError on a malformed or repeated key.

    Example:
        >>> parse_tags(["team=ml", "data=2026-01"])
        {'team': 'ml', 'data': '2026-01'}
        >>> parse_tags(["team"])
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryError: --tag must look like key=value, got 'team'
    """
    tags: dict[str, str] = {}
    for pair in pairs:
        match = _TAG.match(pair)
        if match is None:
            raise RegistryError(f"--tag must look like key=value, got {pair!r}")
        key, value = match.groups()
        if key in tags:
            raise RegistryError(f"--tag {key} given twice")
        tags[key] = value
    return tags


def parse_expected(text: str) -> str | None:
    """``--expected-current``: a version, or ``none`` for "no production version yet".

    Example:
        >>> parse_expected("none") is None, parse_expected("1.2.0")
        (True, '1.2.0')
    """
    return None if text.strip().lower() == "none" else text.strip()


def parse_validation(source: str) -> int | Path:
    """``demo:SEED`` -> the seed; anything else is the path of a .npz file.

    Example:
        >>> parse_validation("demo:7"), parse_validation("data/valid.npz")
        (7, PosixPath('data/valid.npz'))
        >>> parse_validation("demo:x")
        Traceback (most recent call last):
        ...
        stream_app.errors.RegistryError: --validation demo:SEED needs an integer seed, got 'x'
    """
    if source.startswith("demo:"):
        seed = source.removeprefix("demo:")
        if not seed.isdigit():
            raise RegistryError(f"--validation demo:SEED needs an integer seed, got {seed!r}")
        return int(seed)
    return Path(source)


def load_validation(source: str) -> tuple[np.ndarray, np.ndarray]:
    """The validation features and 0/1 labels named by ``source`` (see parse_validation)."""
    parsed = parse_validation(source)
    if isinstance(parsed, int):
        # Imported here: scikit-learn takes a second to import, and only this needs it.
        from stream_app.lifecycle.demo_model import demo_data

        data = demo_data(DEMO_VALIDATION_ROWS, seed=parsed)
        return data.features, data.labels
    try:
        with np.load(parsed, allow_pickle=False) as arrays:
            return np.asarray(arrays["X"]), np.asarray(arrays["y"])
    except KeyError as exc:
        raise RegistryError(f"{parsed}: the .npz needs arrays X and y, missing {exc}") from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{parsed}: not a readable .npz file ({exc})") from None


def load_gate_config(path: Path) -> dict[str, Any]:
    """A JSON object of gate settings; RegistryError when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the gate config must be a JSON object")
    return data


def gate_lines(report: GateReport) -> list[str]:
    """One line per gate check, then the verdict."""
    lines = [f"  {'pass' if c.passed else 'FAIL'}  {c.name}: {c.message}" for c in report.checks]
    verdict = "passed" if report.passed else f"failed: {', '.join(report.failed)}"
    return [*lines, f"gate {verdict}"]


def run_gate(
    bundle: Bundle,
    source: str,
    *,
    baseline: Bundle | None = None,
    overrides: dict[str, Any] | None = None,
) -> GateReport:
    """The pre-deploy gate on ``bundle``: DEFAULT_GATE with ``overrides``, on ``source``.

    ``source`` is a validation set as ``load_validation`` reads it; ``baseline`` is the
    production bundle for the no-regression check (None: no check).
    """
    features, labels = load_validation(source)
    return validate_for_deployment(
        bundle.model,
        features,
        labels,
        {**DEFAULT_GATE, **(overrides or {})},
        baseline=None if baseline is None else baseline.model,
        identity=ModelIdentity(bundle.name, bundle.version, bundle.digest),
    )


def register_bundle(
    registry: ModelRegistry,
    bundle: Bundle,
    tags: dict[str, str] | None = None,
    *,
    location: str | None = None,
) -> ModelVersion:
    """Register a verified bundle: its name, version, metrics and their directions,
    location and digest, as its metadata says.

    ``location`` is where a bundle store put it (``kafka:<digest>``); None: the bundle's
    absolute path (workers take only absolute paths under their root).
    """
    meta = bundle.metadata
    return registry.register(
        bundle.name,
        bundle.version,
        meta.get("metrics") or {},
        str(bundle.directory.resolve()) if location is None else location,
        digest=bundle.digest,
        tags=tags or {},
        directions=meta.get("metric_directions"),
    )
