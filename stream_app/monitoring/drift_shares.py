"""The most drifted feature of a window and its shares per bin, reference beside window.

A drift report gives verdicts (PSI, p-values); a chart of the drift wants the two
distributions themselves. :func:`most_drifted` picks the feature to show and
:func:`feature_shares` puts its reference and window counts on the same bins, as shares.
"""

from __future__ import annotations

import math
from typing import Any

from stream_app.monitoring.drift_report import SEVERITY_RANK, DriftReport
from stream_app.monitoring.profile import OTHER_CATEGORY, ReferenceProfile
from stream_app.monitoring.stats import WindowStats

__all__ = ["feature_shares", "most_drifted"]


def most_drifted(report: DriftReport) -> str | None:
    """The feature with the worst severity, then the smallest p-value, then the largest PSI.

    Example:
        >>> from stream_app.monitoring.drift_report import FeatureDrift
        >>> report = DriftReport({
        ...     "age": FeatureDrift("age", "psi+chi2", "ok", "none", 90, p_value=0.4, psi=0.01),
        ...     "amount": FeatureDrift("amount", "psi+chi2", "drift", "warning", 90,
        ...                            p_value=0.001, psi=0.3)})
        >>> most_drifted(report), most_drifted(DriftReport({}))
        ('amount', None)
    """

    def rank(name: str) -> tuple[int, float, float]:
        f = report.features[name]
        p = 1.0 if f.p_value is None else f.p_value
        psi = 0.0 if f.psi is None or not math.isfinite(f.psi) else f.psi
        return (-SEVERITY_RANK[f.severity], p, -psi)

    return min(sorted(report.features), key=rank, default=None)


def _edge(value: float) -> str:
    return f"{value:.4g}"


def feature_shares(
    profile: ReferenceProfile, window: WindowStats, feature: str
) -> dict[str, Any] | None:
    """``{"feature", "bins", "reference", "current"}``: each bin's share of the values.

    Numeric bins are the profile's (``< c1``, ``c1..c2``, ..., ``>= ck``); categories
    are the profile's plus ``__other__``. None when the feature is not in both or
    the window saw none of its values.

    Example:
        >>> profile = ReferenceProfile.from_data({"x": [1, 2, 3, 4]}, n_bins=2)
        >>> window = WindowStats.empty(profile).update({"x": [4, 4, 4, 1]})
        >>> feature_shares(profile, window, "x")
        {'feature': 'x', 'bins': ['< 3', '>= 3'], 'reference': [0.5, 0.5], 'current': [0.25, 0.75]}
    """
    if feature in profile.numeric and feature in window.numeric:
        ref = profile.numeric[feature]
        cuts = ref.cuts
        bins = [f"< {_edge(cuts[0])}"] if cuts else ["all"]
        bins += [f"{_edge(lo)}..{_edge(hi)}" for lo, hi in zip(cuts, cuts[1:], strict=False)]
        bins += [f">= {_edge(cuts[-1])}"] if cuts else []
        ref_counts = list(ref.bin_counts)
        cur_counts = list(window.numeric[feature].bin_counts)
    elif feature in profile.categorical and feature in window.categorical:
        ref_cat = profile.categorical[feature].counts
        cur_cat = window.categorical[feature].counts
        bins = [*ref_cat, *(k for k in cur_cat if k not in ref_cat)]
        ref_counts = [ref_cat.get(k, 0) for k in bins]
        cur_counts = [cur_cat.get(k, 0) for k in bins]
        if bins and bins[-1] == OTHER_CATEGORY and cur_counts[-1] == 0:
            bins, ref_counts, cur_counts = bins[:-1], ref_counts[:-1], cur_counts[:-1]
    else:
        return None
    ref_total, cur_total = sum(ref_counts), sum(cur_counts)
    if ref_total == 0 or cur_total == 0 or len(ref_counts) != len(cur_counts):
        return None
    return {
        "feature": feature,
        "bins": bins,
        "reference": [round(n / ref_total, 6) for n in ref_counts],
        "current": [round(n / cur_total, 6) for n in cur_counts],
    }
