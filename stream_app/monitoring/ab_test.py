"""A/B comparison of two model variants: conversions, latency guardrail, SRM, recommendation.

Two entry points share one decision (``_decide``): :func:`compare_variants` on raw arrays,
and :func:`report_from_counters` on the mergeable :class:`ABCounters` the stream keeps.

Edge cases give values, never exceptions or NaN: an empty arm has conversion rate 0.0 and
latency mean/p95 None; chi2 is 0.0 and p_value 1.0 where the 2x2 test is undefined (empty
arm, no conversions or only conversions in both arms); latency_increase_pct is 0.0 when
both means are 0, and None when it cannot be known (an arm without latency samples, or A
at 0 ms and B above it) — B then never counts as "within the latency limit". Two empty
arms convert equally well, so the issue's order recommends keep_a.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.ab_stats import (
    DEFAULT_MIXING_SD,
    chi2_2x2,
    sequential_p_value,
    srm_p_value,
)

__all__ = [
    "AB_ALPHA",
    "SRM_ALPHA",
    "ABCounters",
    "ABReport",
    "Recommendation",
    "compare_variants",
    "report_from_counters",
]

Recommendation = Literal["use_b", "keep_a", "review_b", "continue", "invalid"]

SRM_ALPHA = 0.001  # below this the split is broken and the experiment says nothing
AB_ALPHA = 0.05  # the significance level of the conversion test unless told otherwise


@dataclass(frozen=True)
class ABReport:
    """The comparison of variant A (control) and B; ``to_dict()`` is JSON-safe.

    ``significant`` and ``recommendation`` use ``p_value`` when ``decided_by`` is "chi2"
    (one fixed-horizon look) and ``sequential_p_value`` when it is "sequential".
    """

    conversion_rate_a: float
    conversion_rate_b: float
    n_a: int
    n_b: int
    conversions_a: int
    conversions_b: int
    difference: float  # conversion_rate_b - conversion_rate_a
    chi2: float
    p_value: float
    sequential_p_value: float
    significant: bool
    decided_by: Literal["chi2", "sequential"]
    latency_mean_a: float | None
    latency_mean_b: float | None
    latency_p95_a: float | None
    latency_p95_b: float | None
    latency_increase_pct: float | None
    srm_p_value: float | None
    recommendation: Recommendation

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict (floats are finite, unknowns are None)."""
        return asdict(self)


@dataclass(frozen=True)
class _Arm:
    n: int
    conversions: int
    latency_mean: float | None
    latency_p95: float | None

    @classmethod
    def of(cls, counters: ABCounters) -> _Arm:
        # A replayed outcome may arrive without its exposure; a rate stays within [0, 1].
        return cls(
            n=counters.exposures,
            conversions=min(counters.conversions, counters.exposures),
            latency_mean=counters.latency_mean,
            latency_p95=counters.sketch.quantile(0.95),
        )


def compare_variants(
    a_conversions: npt.ArrayLike,
    b_conversions: npt.ArrayLike,
    a_latency_ms: npt.ArrayLike,
    b_latency_ms: npt.ArrayLike,
    *,
    alpha: float = AB_ALPHA,
    max_latency_increase: float = 0.5,
    expected_b_share: float | None = None,
) -> ABReport:
    """Compare two arms from raw per-user outcomes (0/1) and latencies, one fixed look.

    ``max_latency_increase`` is a fraction of A's mean latency (0.5 = 50 %); p95 is
    ``numpy.percentile(x, 95)``; ``sequential_p_value`` is reported for this single look.

    Example:
        >>> r = compare_variants([1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1],
        ...                      [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1],
        ...                      [45, 52, 48, 51, 47, 53, 49, 46, 50, 48],
        ...                      [62, 71, 68, 75, 64, 69, 73, 66, 70, 67])
        >>> round(r.p_value, 3), r.recommendation, round(r.latency_increase_pct, 1)
        (0.264, 'continue', 40.1)
    """
    arms = []
    for name, conversions, latencies in (
        ("a", a_conversions, a_latency_ms),
        ("b", b_conversions, b_latency_ms),
    ):
        outcome = np.asarray(conversions, dtype=np.float64).ravel()
        latency = np.asarray(latencies, dtype=np.float64).ravel()
        if not np.all((outcome == 0) | (outcome == 1)):
            raise ValueError(f"{name}_conversions must hold only 0 and 1")
        if not np.all(np.isfinite(latency)) or np.any(latency < 0):
            raise ValueError(f"{name}_latency_ms must be finite and >= 0")
        has_latency = latency.size > 0
        arms.append(
            _Arm(
                n=int(outcome.size),
                conversions=int(outcome.sum()),
                latency_mean=float(latency.mean()) if has_latency else None,
                latency_p95=float(np.percentile(latency, 95)) if has_latency else None,
            )
        )
    return _decide(
        arms[0], arms[1], alpha, max_latency_increase, expected_b_share, None, DEFAULT_MIXING_SD
    )


def report_from_counters(
    a: ABCounters,
    b: ABCounters,
    *,
    alpha: float = AB_ALPHA,
    max_latency_increase: float = 0.5,
    expected_b_share: float | None = None,
    sequential: float | None = None,
    mixing_sd: float = DEFAULT_MIXING_SD,
) -> ABReport:
    """Compare two arms from the stream's counters (p95 from the sketches).

    ``sequential`` is the ``sequential_p_value`` of the previous report (1.0 before the
    first look): the decision then uses the always-valid p-value, its running minimum, which
    is safe to read after every batch; store the new report's value for the next look.
    None means one fixed-horizon look decided by the chi-square p-value.

    Example:
        >>> a, b = ABCounters(), ABCounters()
        >>> a.record_exposures([50.0] * 4_000); b.record_exposures([55.0] * 4_000)
        >>> for _ in range(400): a.record_outcome(True)
        >>> for _ in range(560): b.record_outcome(True)
        >>> r = report_from_counters(a, b, expected_b_share=0.5, sequential=1.0)
        >>> r.decided_by, r.recommendation, r.sequential_p_value < 0.05
        ('sequential', 'use_b', True)
    """
    return _decide(
        _Arm.of(a), _Arm.of(b), alpha, max_latency_increase, expected_b_share, sequential, mixing_sd
    )


def _latency_increase_pct(a: _Arm, b: _Arm) -> float | None:
    if a.latency_mean is None or b.latency_mean is None:
        return None
    if a.latency_mean == 0.0:
        return 0.0 if b.latency_mean == 0.0 else None
    return (b.latency_mean - a.latency_mean) / a.latency_mean * 100.0


def _check_parameters(alpha: float, max_latency_increase: float, sequential: float | None) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not max_latency_increase >= 0.0:
        raise ValueError(f"max_latency_increase must be >= 0, got {max_latency_increase!r}")
    if sequential is not None and not 0.0 <= sequential <= 1.0:
        raise ValueError(f"sequential must be a p-value in [0, 1], got {sequential!r}")


def _recommend(
    srm: float | None,
    a: _Arm,
    b: _Arm,
    significant: bool,
    increase: float | None,
    max_latency_increase: float,
) -> Recommendation:
    """The issue's order: invalid, keep_a, then use_b / review_b / continue."""
    if srm is not None and srm < SRM_ALPHA:
        return "invalid"
    # Cross-multiplied so an empty arm (rate 0) needs no division.
    if a.conversions * max(b.n, 1) >= b.conversions * max(a.n, 1):
        return "keep_a"
    if not significant:
        return "continue"
    if increase is not None and increase <= max_latency_increase * 100.0:
        return "use_b"
    return "review_b"


def _decide(
    a: _Arm,
    b: _Arm,
    alpha: float,
    max_latency_increase: float,
    expected_b_share: float | None,
    sequential: float | None,
    mixing_sd: float,
) -> ABReport:
    _check_parameters(alpha, max_latency_increase, sequential)
    chi2, p_value = (float(x) for x in chi2_2x2(a.conversions, a.n, b.conversions, b.n))
    previous = 1.0 if sequential is None else sequential
    seq_p = float(
        sequential_p_value(
            a.conversions, a.n, b.conversions, b.n, mixing_sd=mixing_sd, previous=previous
        )
    )
    srm = None if expected_b_share is None else float(srm_p_value(a.n, b.n, expected_b_share))
    rate_a = a.conversions / a.n if a.n else 0.0
    rate_b = b.conversions / b.n if b.n else 0.0
    significant = (p_value if sequential is None else seq_p) < alpha
    increase = _latency_increase_pct(a, b)
    return ABReport(
        conversion_rate_a=rate_a,
        conversion_rate_b=rate_b,
        n_a=a.n,
        n_b=b.n,
        conversions_a=a.conversions,
        conversions_b=b.conversions,
        difference=rate_b - rate_a,
        chi2=chi2,
        p_value=p_value,
        sequential_p_value=seq_p,
        significant=significant,
        decided_by="chi2" if sequential is None else "sequential",
        latency_mean_a=a.latency_mean,
        latency_mean_b=b.latency_mean,
        latency_p95_a=a.latency_p95,
        latency_p95_b=b.latency_p95,
        latency_increase_pct=increase,
        srm_p_value=srm,
        recommendation=_recommend(srm, a, b, significant, increase, max_latency_increase),
    )
