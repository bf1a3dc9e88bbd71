"""The service metrics the app publishes about itself (service-metrics, key: service).

Three services of the app share the topic with upstream's: ``<app_id>`` (one message per
metrics window: latency, error rate, volume), ``<app_id>.drift`` (the worst drift
severity of the windows ending at that time) and ``<app_id>.ab`` (the A/B guardrails
of each closed interval). :class:`AppServiceMetrics` declares every figure they carry;
a message holds only those it has (an absent figure is left out, never null). As a
:class:`~schemas.events.ServiceMetrics` it still reads upstream's messages, extras kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from schemas.events import ServiceMetrics
from schemas.wire import IsoTime, without_example

__all__ = ["AppServiceMetrics"]


def _absent(value: Any) -> bool:
    return value is None


class AppServiceMetrics(ServiceMetrics):
    """One interval's figures of one of the app's services, stamped at the interval's end.

    Example:
        >>> from datetime import UTC, datetime
        >>> m = AppServiceMetrics(service="stream-app.drift",
        ...                       timestamp=datetime(2026, 3, 2, 11, tzinfo=UTC), drift_severity=2)
        >>> m.model_dump_json()
        '{"service":"stream-app.drift","timestamp":"2026-03-02T11:00:00+00:00","drift_severity":2.0}'
    """

    model_config = ConfigDict(json_schema_extra=without_example)

    service: str | None = Field(
        None,
        min_length=1,
        exclude_if=_absent,
        description="The service (also the key): app_id, .drift or .ab.",
    )
    timestamp: IsoTime = Field(description="Event time at the end of the interval.")
    latency_p99_ms: float | None = Field(
        None, ge=0, allow_inf_nan=False, exclude_if=_absent,
        description="p99 of the scoring latency of the window's requests, in ms.",
    )  # fmt: skip
    error_rate: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, exclude_if=_absent,
        description="(rejected + failed) / requests of the window.",
    )  # fmt: skip
    prediction_volume: float | None = Field(
        None, ge=0, allow_inf_nan=False, exclude_if=_absent,
        description="Requests scored in the window.",
    )  # fmt: skip
    requests: int | None = Field(
        None, ge=0, exclude_if=_absent,
        description="Every request of the window: scored, failed, rejected or throttled.",
    )  # fmt: skip
    late_events: int | None = Field(
        None, ge=0, exclude_if=_absent,
        description="Requests that came after their window closed.",
    )  # fmt: skip
    drift_severity: float | None = Field(
        None, ge=0, le=2, exclude_if=_absent,
        description="Worst drift verdict of the windows ending now: 0 none, 1 warning, "
        "2 critical.",
    )  # fmt: skip
    ab_srm: float | None = Field(
        None, ge=0, le=1, exclude_if=_absent,
        description="1 when the A/B split fails the sample-ratio check, else 0.",
    )  # fmt: skip
    ab_latency_increase: float | None = Field(
        None, exclude_if=_absent,
        description="B's mean latency over A's, as a fraction (0.5 = 50 % slower).",
    )  # fmt: skip
