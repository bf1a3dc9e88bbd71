"""Seeded synthetic feature data for the drift calibration test and benchmark.

Shaped like the stream's features: integer ages, a count, skewed (lognormal) money
amounts, a normal session duration and the four categories with unequal shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.events import CATEGORIES
from stream_app.inference.features import CATEGORICAL_DRIFT_COLUMN, NUMERIC_FEATURES
from stream_app.monitoring.drift import DriftConfig, FeatureDrift, compare
from stream_app.monitoring.stats import ReferenceProfile, WindowStats

NUMERIC = NUMERIC_FEATURES
CATEGORICAL = CATEGORICAL_DRIFT_COLUMN
SHARES = (0.35, 0.30, 0.20, 0.15)
REFERENCE_ROWS = 10_000


def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n rows from the reference distribution."""
    return {
        "age": np.clip(np.round(rng.normal(38.0, 12.0, n)), 13, 120),
        "purchase_count": 1.0 + rng.poisson(6.0, n),
        "purchase_total": rng.lognormal(5.0, 0.9, n),
        "purchase_mean": rng.lognormal(3.6, 0.5, n),
        "purchase_max": rng.lognormal(4.2, 0.7, n),
        "session_duration_minutes": np.abs(rng.normal(14.0, 5.0, n)) + 0.1,
        CATEGORICAL: rng.choice(np.array(CATEGORIES), n, p=SHARES),
    }


def reference_profile(seed: int = 20_240_601) -> ReferenceProfile:
    """The profile of REFERENCE_ROWS reference rows."""
    data = draw(np.random.default_rng(seed), REFERENCE_ROWS)
    return ReferenceProfile.from_data(data, categorical=[CATEGORICAL])


def window(
    profile: ReferenceProfile,
    rng: np.random.Generator,
    n: int,
    shift: str | None = None,
    shift_std: float = 1.0,
) -> WindowStats:
    """A window of n fresh reference rows; `shift` moves that feature by shift_std ref stds."""
    data = draw(rng, n)
    if shift is not None:
        data[shift] = data[shift] + shift_std * profile.numeric[shift].std
    return WindowStats.empty(profile).update(data)


COMPONENTS = ("mean_shift", "psi", "chi2", "compare")


def flagged(feature: FeatureDrift, component: str, config: DriftConfig) -> bool:
    """Whether one component of compare() alone would flag this feature."""
    if component == "mean_shift":
        return feature.z_score is not None and feature.z_score > config.threshold_std
    if component == "psi":
        return feature.psi is not None and feature.psi >= config.psi_warning
    if component == "chi2":
        return feature.p_value is not None and feature.p_value < config.alpha
    return feature.status == "drift"


@dataclass(frozen=True)
class Calibration:
    """Counts over seeded trials: windows with any feature flagged (null windows),
    windows where the shifted feature was flagged, and where compare() named it alone."""

    trials: int
    false_alarms: dict[str, int]
    detections: dict[str, int]
    named_alone: int


def calibrate(
    profile: ReferenceProfile,
    n: int,
    trials: int = 100,
    shift_std: float = 1.0,
    config: DriftConfig | None = None,
) -> Calibration:
    """Null trial i uses seed i; shifted trial i uses seed 100_000 + i and shifts
    NUMERIC[i % 6] by shift_std reference stds."""
    config = config or DriftConfig()
    false_alarms = dict.fromkeys(COMPONENTS, 0)
    detections = dict.fromkeys(COMPONENTS, 0)
    named_alone = 0
    for i in range(trials):
        null = compare(profile, window(profile, np.random.default_rng(i), n), config)
        name = NUMERIC[i % len(NUMERIC)]
        rng = np.random.default_rng(100_000 + i)
        shifted = compare(profile, window(profile, rng, n, name, shift_std), config)
        for component in COMPONENTS:
            features = null.features.values()
            false_alarms[component] += any(flagged(f, component, config) for f in features)
            detections[component] += flagged(shifted.features[name], component, config)
        named_alone += shifted.drifting_features == (name,)
    return Calibration(trials, false_alarms, detections, named_alone)
