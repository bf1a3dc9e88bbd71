"""Drift detection: the classic mean-shift rule and the window-vs-reference comparison.

:func:`mean_shift_report` is the classic rule on raw arrays. :func:`compare` is what
the stream runs at window close: per numeric feature the mean-shift score, the PSI on
the reference bins and a chi-square test of the window's bin counts against the
reference's; per categorical feature the same chi-square and PSI over categories.

A 1-std shift moves the window *mean* by one reference std, so the mean-shift score is
about 1 and the classic rule (z > 2) misses it. Catching it is the job of the
distribution tests: a feature drifts when its Holm-corrected p-value is below
``alpha`` *and* its PSI reaches ``psi_warning``. The p-value keeps small windows from
raising noise; the PSI keeps large windows from raising statistically significant but
negligible changes. Calibration figures are in BENCHMARKS.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal, NamedTuple

from numpy.typing import ArrayLike

from stream_app.errors import FeatureMismatchError
from stream_app.monitoring.divergence import adjust_p_values, psi, two_sample_chi2
from stream_app.monitoring.drift_report import (
    SEVERITY_RANK,
    DriftConfig,
    DriftReport,
    FeatureDrift,
    Severity,
    Status,
    WindowBound,
)
from stream_app.monitoring.profile import ReferenceProfile, finite_values
from stream_app.monitoring.stats import OTHER_CATEGORY, WindowStats

__all__ = [
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "Severity",
    "compare",
    "mean_shift_report",
    "mean_shift_z",
]


def mean_shift_z(mean_ref: float, std_ref: float, mean_prod: float) -> float:
    """|mean_prod - mean_ref| / std_ref; with a zero std, inf if the means differ, else 0.

    Example:
        >>> mean_shift_z(10.0, 2.0, 13.0), mean_shift_z(5.0, 0.0, 5.0), mean_shift_z(5.0, 0.0, 6.0)
        (1.5, 0.0, inf)
    """
    diff = abs(mean_prod - mean_ref)
    if std_ref == 0:
        return math.inf if diff > 0 else 0.0
    return diff / std_ref


def mean_shift_report(
    reference: Mapping[str, Sequence[float] | ArrayLike],
    production: Mapping[str, Sequence[float] | ArrayLike],
    threshold_std: float = 2.0,
    *,
    window_start: WindowBound = None,
    window_end: WindowBound = None,
) -> DriftReport:
    """Classic rule: a feature drifts when its mean moved more than threshold_std ref stds.

    Non-finite values are ignored; a feature with no values on either side is
    "insufficient_data". Every reference feature must be in ``production``.

    Example:
        >>> report = mean_shift_report(
        ...     {"income": [45000, 52000, 38000, 61000, 48000, 55000, 42000, 59000],
        ...      "age": [28, 35, 42, 31, 45, 38, 29, 52]},
        ...     {"income": [72000, 85000, 68000, 91000, 78000, 82000, 75000, 88000],
        ...      "age": [30, 33, 40, 35, 42, 37, 31, 48]},
        ... )
        >>> report.drift_detected, report.drifting_features
        (True, ('income',))
        >>> round(report.features["income"].z_score, 2), round(report.features["age"].z_score, 2)
        (3.91, 0.06)
    """
    DriftConfig(threshold_std=threshold_std)  # validates the threshold
    absent = sorted(set(reference) - set(production))
    if absent:
        raise FeatureMismatchError(f"production lacks reference features: {absent}")
    features: dict[str, FeatureDrift] = {}
    for name, ref_values in reference.items():
        ref, _ = finite_values(ref_values)
        prod, _ = finite_values(production[name])
        if ref.size == 0 or prod.size == 0:
            features[name] = FeatureDrift(
                name, "mean_shift", "insufficient_data", "none", prod.size
            )
            continue
        ref_mean, ref_std, prod_mean = float(ref.mean()), float(ref.std()), float(prod.mean())
        z = mean_shift_z(ref_mean, ref_std, prod_mean)
        drift = z > threshold_std
        reasons = (f"mean shift z={z:.3g} > {threshold_std:g}",) if drift else ()
        features[name] = FeatureDrift(
            name,
            "mean_shift",
            "drift" if drift else "ok",
            "critical" if drift else "none",
            int(prod.size),
            *_Moments(ref_mean, ref_std, prod_mean, float(prod.std())),
            z_score=z,
            reasons=reasons,
        )
    return DriftReport(features, _iso(window_start), _iso(window_end))


def compare(
    profile: ReferenceProfile,
    window: WindowStats,
    config: DriftConfig = DriftConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    window_start: WindowBound = None,
    window_end: WindowBound = None,
) -> DriftReport:
    """Compare one window with the reference profile it was binned on.

    Each feature with at least ``min_samples`` values is tested; the p-values are
    corrected across the tested features. A feature drifts (critical) when its
    mean-shift score exceeds ``threshold_std``, or when its corrected p-value is below
    ``alpha`` and its PSI reaches ``psi_warning`` (warning) or ``psi_critical``
    (critical). Features with fewer values are "insufficient_data", never drift.

    Raises:
        FeatureMismatchError: the window was not built from this profile (other
            features, bin edges or categories), e.g. after a model swap.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> profile = ReferenceProfile.from_data(
        ...     {"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)}
        ... )
        >>> window = WindowStats.empty(profile).update(
        ...     {"x": rng.normal(1, 1, 1000), "y": rng.normal(0, 1, 1000)}
        ... )
        >>> report = compare(profile, window)
        >>> report.drifting_features, report.severity
        (('x',), 'critical')
        >>> x = report.features["x"]
        >>> round(x.z_score, 1), x.psi > 0.25, x.p_value < 1e-12, report.features["y"].status
        (1.0, True, True, 'ok')
    """
    _check_window(profile, window)
    raw = {name: _test_feature(profile, window, name, config) for name in profile.features}
    tested = [name for name, f in raw.items() if f.status != "insufficient_data"]
    adjusted = adjust_p_values([_raw_p(raw[name]) for name in tested], config.correction)
    features = dict(raw)
    for name, p_value in zip(tested, adjusted, strict=True):
        features[name] = _judge(raw[name], p_value, config)
    return DriftReport(features, _iso(window_start), _iso(window_end))


def _check_window(profile: ReferenceProfile, window: WindowStats) -> None:
    if set(window.features) != set(profile.features):
        raise FeatureMismatchError(
            f"window features {sorted(window.features)} != profile {sorted(profile.features)}"
        )
    for name, p in profile.numeric.items():
        if name not in window.numeric or window.numeric[name].cuts != p.cuts:
            raise FeatureMismatchError(f"feature {name!r}: window bins differ from the profile")
    for name, c in profile.categorical.items():
        if name not in window.categorical or set(window.categorical[name].counts) != {
            *c.counts,
            OTHER_CATEGORY,
        }:
            raise FeatureMismatchError(f"feature {name!r}: window categories differ")


def _test_feature(
    profile: ReferenceProfile, window: WindowStats, name: str, config: DriftConfig
) -> FeatureDrift:
    n = window.count(name)
    moments = _Moments()
    if name in profile.categorical:
        counts = profile.categorical[name].counts
        categories = [*counts, OTHER_CATEGORY]
        reference = [counts.get(c, 0) for c in categories]
        observed = [window.categorical[name].counts[c] for c in categories]
        test: Literal["psi+chi2", "chi2"] = "chi2"
        z = None
    else:
        p = profile.numeric[name]
        reference, observed = list(p.bin_counts), list(window.bin_counts(name))
        test = "psi+chi2"
        moments = _Moments(p.mean, p.std, window.mean(name) if n else None,
                          window.std(name) if n else None)  # fmt: skip
        z = mean_shift_z(p.mean, p.std, window.mean(name)) if n else None
    if n < config.min_samples:
        return FeatureDrift(name, test, "insufficient_data", "none", n, *moments)
    statistic, p_value = two_sample_chi2(reference, observed)
    return FeatureDrift(
        name,
        test,
        "ok",
        "none",
        n,
        *moments,
        z_score=z,
        statistic=statistic,
        p_value_raw=p_value,
        psi=psi(reference, observed, config.psi_epsilon),
    )


class _Moments(NamedTuple):
    """Mean and population standard deviation in the reference and in the window, in the
    order of FeatureDrift's fields."""

    reference_mean: float | None = None
    reference_std: float | None = None
    current_mean: float | None = None
    current_std: float | None = None


def _raw_p(f: FeatureDrift) -> float:
    return 1.0 if f.p_value_raw is None else f.p_value_raw


def _judge(f: FeatureDrift, p_value: float, config: DriftConfig) -> FeatureDrift:
    severity: Severity = "none"
    reasons: list[str] = []
    if f.z_score is not None and f.z_score > config.threshold_std:
        severity = "critical"
        reasons.append(f"mean shift z={f.z_score:.3g} > {config.threshold_std:g}")
    value = 0.0 if f.psi is None else f.psi
    if p_value < config.alpha and value >= config.psi_warning:
        level: Severity = "critical" if value >= config.psi_critical else "warning"
        severity = max(severity, level, key=SEVERITY_RANK.__getitem__)
        reasons.append(f"psi={value:.3g} with p={p_value:.3g} < alpha={config.alpha:g}")
    status: Status = "drift" if severity != "none" else "ok"
    return replace(f, status=status, severity=severity, p_value=p_value, reasons=tuple(reasons))


def _iso(bound: WindowBound) -> str | None:
    return bound.isoformat() if isinstance(bound, datetime) else bound
