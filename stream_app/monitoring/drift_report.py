"""Drift verdicts and thresholds: DriftConfig, FeatureDrift, DriftReport.

Produced by :mod:`stream_app.monitoring.drift`, which re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.reports import FeatureDriftVerdict

__all__ = [
    "SEVERITY_RANK",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "Severity",
    "Status",
    "WindowBound",
]

Severity = Literal["none", "warning", "critical"]
Status = Literal["ok", "drift", "insufficient_data"]
SEVERITY_RANK: dict[Severity, int] = {"none": 0, "warning": 1, "critical": 2}
WindowBound = datetime | str | None


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds for :func:`compare`; the defaults are the calibrated ones.

    Args:
        threshold_std: mean-shift score above which a feature drifts (critical).
        psi_warning: PSI at which a significant change is a warning.
        psi_critical: PSI at which a significant change is critical.
        alpha: family-wise significance level of the distribution tests.
        correction: "holm" (default) or "bonferroni", across the tested features.
        min_samples: below this many values a feature is "insufficient_data".
        psi_epsilon: additive smoothing of bin proportions, so empty bins stay finite.
    """

    threshold_std: float = 2.0
    psi_warning: float = 0.1
    psi_critical: float = 0.25
    alpha: float = 0.01
    correction: Literal["holm", "bonferroni"] = "holm"
    min_samples: int = 100
    psi_epsilon: float = 1e-4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold_std) and self.threshold_std > 0):
            raise ValueError(f"threshold_std must be in (0, inf), got {self.threshold_std}")
        if not 0 < self.psi_warning < self.psi_critical < math.inf:
            raise ValueError(
                "psi thresholds must satisfy 0 < psi_warning < psi_critical < inf, "
                f"got {self.psi_warning} and {self.psi_critical}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in ("holm", "bonferroni"):
            raise ValueError(f"correction must be 'holm' or 'bonferroni', got {self.correction!r}")
        if isinstance(self.min_samples, bool) or not (
            isinstance(self.min_samples, int) and self.min_samples >= 2
        ):
            raise ValueError(f"min_samples must be an integer in [2, inf), got {self.min_samples}")
        if not 0 < self.psi_epsilon <= 0.01:
            raise ValueError(f"psi_epsilon must be in (0, 0.01], got {self.psi_epsilon}")


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature.

    ``test`` is "psi+chi2" (numeric), "chi2" (categorical, PSI also given) or
    "mean_shift". ``reference_*`` and ``current_*`` are the mean and the population
    standard deviation of a numeric feature in the reference and in the window (None for a
    categorical feature, and the current ones for a window without values); ``z_score``
    is the current mean's distance from the reference mean in reference stds. ``p_value``
    is corrected across features, ``p_value_raw`` is not. ``statistic`` is the
    chi-square statistic. Values that were not computed are None.
    """

    name: str
    test: Literal["psi+chi2", "chi2", "mean_shift"]
    status: Status
    severity: Severity
    n: int
    reference_mean: float | None = None
    reference_std: float | None = None
    current_mean: float | None = None
    current_std: float | None = None
    z_score: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_value_raw: float | None = None
    psi: float | None = None
    reasons: tuple[str, ...] = ()

    def to_message(self) -> FeatureDriftVerdict:
        """The verdict as the drift-reports message carries it."""
        return FeatureDriftVerdict(
            name=self.name, test=self.test, status=self.status, severity=self.severity,
            n=self.n, reference_mean=self.reference_mean, reference_std=self.reference_std,
            current_mean=self.current_mean, current_std=self.current_std,
            z_score=self.z_score, statistic=self.statistic, p_value=self.p_value,
            p_value_raw=self.p_value_raw, psi=self.psi, reasons=self.reasons,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; an infinite z-score is written as the string "inf"."""
        return self.to_message().model_dump(mode="json")


@dataclass(frozen=True)
class DriftReport:
    """Per-feature verdicts of one window, the drifting features and overall severity."""

    features: Mapping[str, FeatureDrift]
    window_start: str | None = None
    window_end: str | None = None
    drifting_features: tuple[str, ...] = field(init=False)
    severity: Severity = field(init=False)

    def __post_init__(self) -> None:
        drifting = tuple(sorted(n for n, f in self.features.items() if f.status == "drift"))
        worst: Severity = max(
            (f.severity for f in self.features.values()),
            key=SEVERITY_RANK.__getitem__,
            default="none",
        )
        object.__setattr__(self, "drifting_features", drifting)
        object.__setattr__(self, "severity", worst)

    @property
    def drift_detected(self) -> bool:
        """True when at least one feature drifts."""
        return bool(self.drifting_features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (non-finite floats as strings, see FeatureDrift.to_dict)."""
        return {
            "drift_detected": self.drift_detected,
            "drifting_features": list(self.drifting_features),
            "severity": self.severity,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }

    def verdicts(self) -> dict[str, FeatureDriftVerdict]:
        """Each feature's verdict as the drift-reports message carries it."""
        return {name: f.to_message() for name, f in self.features.items()}
