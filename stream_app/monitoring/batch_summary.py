"""Summaries of a scored micro-batch for the monitoring agents (one per metrics window).

The scoring agent cannot write the shared drift and A/B state itself (a batch mixes
partitions); it sends these summaries to monitor-events instead. A summary holds
mergeable state only: window feature statistics and per-variant counters.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.events import Prediction, PredictionRequest, Variant
from schemas.monitor import BatchSummary
from stream_app.errors import FeatureMismatchError
from stream_app.inference.features import (
    CATEGORICAL_DRIFT_COLUMN,
    NUMERIC_FEATURES,
    drift_columns,
)
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.stats import ReferenceProfile, WindowStats

__all__ = ["bucket_start", "check_reference", "summarize_batch"]


# The columns drift_columns gives the window statistics.
DRIFT_COLUMNS: tuple[str, ...] = (*NUMERIC_FEATURES, CATEGORICAL_DRIFT_COLUMN)


def bucket_start(at: datetime, window_seconds: float) -> datetime:
    """Start of the epoch-aligned window of ``window_seconds`` that contains ``at``.

    Example:
        >>> bucket_start(datetime(2026, 1, 1, 10, 59, 59, tzinfo=UTC), 3600).isoformat()
        '2026-01-01T10:00:00+00:00'
    """
    if not window_seconds > 0:
        raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
    start = math.floor(at.timestamp() / window_seconds) * window_seconds
    return datetime.fromtimestamp(start, UTC)


def check_reference(data: object) -> ReferenceProfile | None:
    """The bundle's reference profile, checked to fit the drift columns; None if it has none.

    A profile that cannot be read, or that names features the scorer does not produce
    (for example the model's one-hot inputs instead of ``category_preference``), raises
    FeatureMismatchError, so the bundle is refused before it serves rather than every
    batch's summary failing after.

    Example:
        >>> check_reference(None) is None
        True
        >>> from stream_app.errors import FeatureMismatchError
        >>> try:
        ...     check_reference({"n_bins": 2, "features": {"category_home": {
        ...         "kind": "categorical", "counts": {"0": 3}, "total": 3, "missing": 0}}})
        ... except FeatureMismatchError as exc:
        ...     print(exc)
        reference profile features ['category_home'] are not drift columns
    """
    if not data:
        return None
    try:
        profile = ReferenceProfile.from_dict(data)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise FeatureMismatchError(f"unreadable reference profile ({type(exc).__name__})") from None
    unknown = sorted(set(profile.features) - set(DRIFT_COLUMNS))
    if unknown:
        raise FeatureMismatchError(f"reference profile features {unknown} are not drift columns")
    return profile


def summarize_batch(
    model_name: str,
    serving_version: str,
    challenger_version: str | None,
    reference: ReferenceProfile | None,
    scored: Sequence[tuple[PredictionRequest, Prediction]],
    failed: Sequence[PredictionRequest],
    *,
    window_seconds: float,
    model_ms: Sequence[float],
) -> list[BatchSummary]:
    """One BatchSummary per window the batch's requests fall in, oldest window first.

    Every request must carry its event time (intake sets it). ``model_ms`` holds, for
    each scored pair, the model time of its variant's call: the variants' latency
    samples (the A/B latency guardrail and the app's latency p99) are these, not the
    predictions' latency_ms, which for B would include A's call (a mixed batch is
    scored A then B) and the time before scoring.

    Example:
        >>> t = datetime(2026, 1, 1, 9, 0, 30, tzinfo=UTC)
        >>> r = PredictionRequest(request_id="r1", client_id="c", user_id="USR1", age=30,
        ...     purchase_history=[5.0], category_preference="home",
        ...     session_duration_minutes=2.0, timestamp=t)
        >>> p = Prediction(request_id="r1", model_name="m", model_version="1", variant="A",
        ...     score=0.3, label=0, latency_ms=2.0, timestamp=t)
        >>> [s] = summarize_batch("m", "1", None, None, [(r, p)], [r], window_seconds=60,
        ...                       model_ms=[1.5])
        >>> s.bucket_start.isoformat(), s.scored, s.failed, s.variants["A"]["exposures"]
        ('2026-01-01T09:00:00+00:00', 1, 1, 1)
        >>> s.variants["A"]["latency_sum"]
        1.5
    """
    if len(model_ms) != len(scored):
        raise ValueError(f"{len(model_ms)} model times for {len(scored)} predictions")
    buckets: dict[datetime, tuple[list[tuple[Prediction, float]], list[datetime]]]
    buckets = defaultdict(lambda: ([], []))
    requests: dict[datetime, list[PredictionRequest]] = defaultdict(list)
    for (request, prediction), took in zip(scored, model_ms, strict=True):
        at = _time(request)
        buckets[bucket_start(at, window_seconds)][0].append((prediction, took))
        buckets[bucket_start(at, window_seconds)][1].append(at)
        requests[bucket_start(at, window_seconds)].append(request)
    failures: dict[datetime, int] = defaultdict(int)
    for request in failed:
        at = _time(request)
        failures[bucket_start(at, window_seconds)] += 1
        buckets[bucket_start(at, window_seconds)][1].append(at)
    summaries = []
    for start in sorted(buckets):
        pairs, times = buckets[start]
        summaries.append(
            BatchSummary(
                model_name=model_name,
                bucket_start=start,
                first_event=min(times),
                last_event=max(times),
                serving_version=serving_version,
                challenger_version=challenger_version,
                scored=len(pairs),
                failed=failures[start],
                variants=_variants(pairs),
                features=_features(reference, requests[start]),
                reference={} if reference is None else reference.to_dict(),
            )
        )
    return summaries


def _time(request: PredictionRequest) -> datetime:
    if request.timestamp is None:
        raise ValueError(f"request {request.request_id!r} has no event time")
    return request.timestamp


def _variants(pairs: Sequence[tuple[Prediction, float]]) -> dict[Variant, dict]:  # type: ignore[type-arg]
    latencies: dict[Variant, list[float]] = defaultdict(list)
    for prediction, model_ms in pairs:
        latencies[prediction.variant].append(model_ms)
    out = {}
    for variant in sorted(latencies):
        counters = ABCounters()
        counters.record_exposures(latencies[variant])
        out[variant] = counters.to_dict()
    return out


def _features(
    reference: ReferenceProfile | None, requests: Sequence[PredictionRequest]
) -> dict[str, object]:
    if reference is None or not requests:
        return {}
    return WindowStats.empty(reference).update(drift_columns(requests)).to_dict()
