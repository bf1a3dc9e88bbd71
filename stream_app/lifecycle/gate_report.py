"""The pre-deploy gate's verdict: named checks, metrics and the model they judged.

Apart from gate.py so the registry can take a report without importing numpy or
scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stream_app.jsonfloat import NON_FINITE, decode_float, encode_float

__all__ = ["GateCheck", "GateReport", "ModelIdentity"]

Threshold = float | str | None


@dataclass(frozen=True)
class GateCheck:
    """One named check: passed or not, why, the measured value and the threshold."""

    name: str
    passed: bool
    message: str
    value: float | str | None = None
    threshold: Threshold = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; infinite or NaN values become strings."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "value": _json_number(self.value),
            "threshold": _json_number(self.threshold),
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class ModelIdentity:
    """Which model the gate judged, as the caller names it.

    promote() requires name and version, equal to the version promoted, and compares
    the digest when both the report and the registered version carry one.
    """

    name: str | None = None
    version: str | None = None
    digest: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-safe form."""
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict: passed only when there are checks and all of them passed.

    ``passed`` is derived from the checks, so a report cannot claim a pass its checks
    do not support, even one read back with ``from_dict``.

    Example:
        >>> report = GateReport((GateCheck("accuracy", True, "0.91 >= 0.8", 0.91, 0.8),
        ...                      GateCheck("latency_p95", False, "12 ms > 10 ms", 12.0, 10.0)))
        >>> report.passed, report.failed
        (False, ('latency_p95',))
        >>> GateReport.from_dict(report.to_dict()) == report
        True
    """

    checks: tuple[GateCheck, ...]
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    identity: ModelIdentity | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed (an empty report never passes)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the checks that did not pass."""
        return tuple(c.name for c in self.checks if not c.passed)

    def check(self, name: str) -> GateCheck:
        """The check called ``name`` (KeyError when the gate did not run it)."""
        for item in self.checks:
            if item.name == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form of the whole report."""
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "model": self.identity.to_dict() if self.identity else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        """Read back a report written by ``to_dict`` (e.g. gate run and promotion apart)."""
        checks = tuple(
            GateCheck(
                name=str(c["name"]),
                passed=bool(c["passed"]),
                message=str(c["message"]),
                value=_restore(c.get("value")),
                threshold=_restore(c.get("threshold")),
                skipped=bool(c.get("skipped", False)),
            )
            for c in data["checks"]
        )
        metrics = {str(k): _float_or_none(v) for k, v in data.get("metrics", {}).items()}
        model = data.get("model")
        identity = ModelIdentity(**model) if model else None
        return cls(checks, metrics, identity)

    def summary(self) -> dict[str, Any]:
        """The short form kept in the registry's promotion event."""
        return {
            "passed": self.passed,
            "checks": {c.name: c.passed for c in self.checks},
            "failed": list(self.failed),
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "model": self.identity.to_dict() if self.identity else None,
        }


def _json_number(value: float | str | None) -> float | str | None:
    return encode_float(value) if isinstance(value, float) else value


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _restore(value: Any) -> float | str | None:
    """Undo ``_json_number``: the strings it writes for non-finite floats become floats."""
    if value in NON_FINITE:
        return decode_float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return None if value is None else value if isinstance(value, float | str) else str(value)
