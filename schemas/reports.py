"""The drift-reports and ab-reports messages (key: model name).

Each closed drift window gives one :class:`DriftReportMessage`: its ids, bounds and
counts, and one :class:`FeatureDriftVerdict` per feature of the reference profile. Each
closed A/B interval gives one :class:`ABReportMessage` with the comparison so far.
Non-finite floats travel as ``"inf"``, ``"-inf"`` or ``"nan"`` (``schemas.wire``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.wire import IsoTime, ReportFloat, without_example

__all__ = [
    "ABComparison",
    "ABReportMessage",
    "DriftReportMessage",
    "DriftSeverity",
    "FeatureDistribution",
    "FeatureDriftVerdict",
]

DriftSeverity = Literal["none", "warning", "critical"]


class FeatureDriftVerdict(BaseModel):
    """One feature of one drift window: its figures and the verdict on them.

    Example:
        >>> v = FeatureDriftVerdict(name="age", test="psi+chi2", status="ok", severity="none",
        ...     n=120, reference_mean=38.0, reference_std=10.0, current_mean=41.0,
        ...     current_std=9.5, z_score=0.3, psi=0.02, p_value=0.4)
        >>> v.model_dump(mode="json")["z_score"], v.p_value_raw
        (0.3, None)
    """

    model_config = ConfigDict(frozen=True, json_schema_extra=without_example)

    name: str = Field(description="The feature's name in the reference profile.")
    test: Literal["psi+chi2", "chi2", "mean_shift"] = Field(
        description="psi+chi2: numeric feature; chi2: categorical; mean_shift: the classic rule."
    )
    status: Literal["ok", "drift", "insufficient_data"] = Field(
        description="insufficient_data: fewer values than the minimum sample, not tested."
    )
    severity: DriftSeverity = Field(description="The verdict: none, warning or critical.")
    n: int = Field(ge=0, description="Values of the feature in the window.")
    reference_mean: ReportFloat | None = Field(
        None, description="Mean in the reference profile (numeric features)."
    )
    reference_std: ReportFloat | None = Field(
        None, description="Population standard deviation in the reference profile."
    )
    current_mean: ReportFloat | None = Field(
        None, description="Mean in the window (None when the window has no value)."
    )
    current_std: ReportFloat | None = Field(
        None, description="Population standard deviation in the window."
    )
    z_score: ReportFloat | None = Field(
        None,
        description="|current_mean - reference_mean| / reference_std; inf when the reference "
        "std is 0 and the means differ.",
    )
    statistic: ReportFloat | None = Field(None, description="The chi-square statistic.")
    p_value: ReportFloat | None = Field(
        None, description="The chi-square test's p-value, corrected across the features."
    )
    p_value_raw: ReportFloat | None = Field(None, description="The same p-value uncorrected.")
    psi: ReportFloat | None = Field(None, description="Population stability index on the bins.")
    reasons: tuple[str, ...] = Field((), description="Why the feature drifts, if it does.")


class FeatureDistribution(BaseModel):
    """One feature's share of values per bin, in the reference and in the window."""

    model_config = ConfigDict(frozen=True)

    feature: str
    bins: tuple[str, ...] = Field(
        description="Numeric bins of the reference profile (< c1, c1..c2, >= ck) or categories."
    )
    reference: tuple[float, ...] = Field(description="Share of the reference's values per bin.")
    current: tuple[float, ...] = Field(description="Share of the window's values per bin.")


class DriftReportMessage(BaseModel):
    """One closed drift window of one model, serving version and reference profile."""

    model_config = ConfigDict(
        frozen=True, json_schema_extra=without_example, protected_namespaces=()
    )

    window_id: str = Field(description="model|version|reference id|window start: unique.")
    model_name: str
    model_version: str = Field(description="The serving version whose requests were profiled.")
    reference_id: str = Field(description="Digest of the reference profile compared against.")
    batches: int = Field(ge=0, description="Micro-batch summaries folded into the window.")
    requests: int = Field(ge=0, description="Scored requests in the window.")
    late_events: int = Field(
        ge=0, description="Requests that arrived after their window closed, reported once here."
    )
    drift_detected: bool
    drifting_features: tuple[str, ...] = Field(description="Features whose status is drift.")
    severity: DriftSeverity = Field(description="The worst severity of any feature.")
    window_start: IsoTime | None = None
    window_end: IsoTime | None = None
    features: dict[str, FeatureDriftVerdict]
    distribution: FeatureDistribution | None = Field(
        None, description="The most drifted feature's distribution, reference beside window."
    )


class ABComparison(BaseModel):
    """Variant A (control) against B: conversions, latency guardrail, sample-ratio check.

    ``significant`` and ``recommendation`` use ``p_value`` when ``decided_by`` is chi2 and
    ``sequential_p_value`` when it is sequential. Unknown latencies are None.
    """

    model_config = ConfigDict(frozen=True, json_schema_extra=without_example)

    conversion_rate_a: float = Field(ge=0, le=1)
    conversion_rate_b: float = Field(ge=0, le=1)
    n_a: int = Field(ge=0, description="Exposures of A.")
    n_b: int = Field(ge=0, description="Exposures of B.")
    conversions_a: int = Field(ge=0)
    conversions_b: int = Field(ge=0)
    difference: float = Field(description="conversion_rate_b - conversion_rate_a")
    chi2: float
    p_value: float = Field(ge=0, le=1)
    sequential_p_value: float = Field(ge=0, le=1)
    significant: bool
    decided_by: Literal["chi2", "sequential"]
    latency_mean_a: float | None
    latency_mean_b: float | None
    latency_p95_a: float | None
    latency_p95_b: float | None
    latency_increase_pct: float | None = Field(description="B's mean latency over A's, in %.")
    srm_p_value: float | None = Field(description="Sample-ratio mismatch test of the split.")
    recommendation: Literal["use_b", "keep_a", "review_b", "continue", "invalid"]


class ABReportMessage(BaseModel):
    """The A/B report published when one interval of event time closed."""

    model_config = ConfigDict(frozen=True, json_schema_extra=without_example)

    model: str = Field(description="The model name (also the key).")
    experiment: str
    serving_version: str = Field(description="Variant A's version.")
    challenger_version: str | None = Field(description="Variant B's version.")
    interval_end: IsoTime
    late_events: int = Field(ge=0, description="Events that came after their interval closed.")
    report: ABComparison
