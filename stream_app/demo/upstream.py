"""What upstream services send besides requests: outcomes and the checkout-api's metrics.

Outcomes: a user converts with the true probability of the demo model's generative story
(``demo_model.conversion_probability``), raised by ``uplift`` (relative) for users in
variant B, so the A/B test has a real effect to find. The outcome arrives 1 to 30 minutes
after the request, keyed by request_id.

Service metrics: one point per interval for one service, latency p99 40-65 ms and error
rate under 1.2 % at rest, and one incident hour whose latency ramps through the alert
levels of ``alert_rules.DEFAULT_RULES``: 5 minutes at warning level (120-180 ms), 50 at
critical (240-420 ms), 5 at warning again, then back to rest. The default alert rules
therefore give exactly firing, escalated, deescalated and resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from schemas.events import Variant
from stream_app.lifecycle.demo_model import conversion_probability

__all__ = [
    "INCIDENT_RAMP_SECONDS",
    "INCIDENT_SECONDS",
    "MetricPoint",
    "conversions",
    "outcome_delays",
    "service_metric_points",
]

INCIDENT_SECONDS = 3600.0
INCIDENT_RAMP_SECONDS = 300.0
_OUTCOME_DELAY = (60.0, 1800.0)


def conversions(
    features: np.ndarray, variants: Sequence[Variant], uplift: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw converted (0/1) per request: the true probability, times ``1 + uplift`` for B.

    Example:
        >>> row = [38.0, 5.0, 135.0, 27.0, 40.0, 12.0, 0.0, 1.0, 0.0, 0.0]  # p = 0.198
        >>> x = np.array([row] * 4000)
        >>> drawn = conversions(x, ["A", "B"] * 2000, 0.5, np.random.default_rng(1))
        >>> round(float(drawn[0::2].mean()), 2), round(float(drawn[1::2].mean()), 2)
        (0.2, 0.3)
    """
    if not 0.0 <= uplift <= 10.0:
        raise ValueError(f"uplift must be in [0, 10], got {uplift}")
    if len(variants) != len(features):
        raise ValueError(f"{len(variants)} variants for {len(features)} feature rows")
    probability = conversion_probability(features)
    is_b = np.fromiter((v == "B" for v in variants), dtype=bool, count=len(variants))
    probability = np.where(is_b, np.minimum(1.0, probability * (1.0 + uplift)), probability)
    return (rng.random(len(probability)) < probability).astype(np.int64)


def outcome_delays(n: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds from each request to its outcome, whole milliseconds in [60, 1800).

    Example:
        >>> d = outcome_delays(1000, np.random.default_rng(0))
        >>> bool(d.min() >= 60 and d.max() < 1800)
        True
    """
    low, high = _OUTCOME_DELAY
    return np.floor(rng.uniform(low, high, n) * 1000.0) / 1000.0


@dataclass(frozen=True)
class MetricPoint:
    """One service-metrics value at ``offset`` seconds from the start of the day."""

    offset: float
    latency_p99_ms: float
    error_rate: float
    requests: int


def service_metric_points(
    duration_seconds: float,
    interval_seconds: float,
    incident_start: float,
    rng: np.random.Generator,
) -> list[MetricPoint]:
    """One point per interval from 0 to ``duration_seconds``, with the incident hour.

    Example:
        >>> points = service_metric_points(10800.0, 60.0, 3600.0, np.random.default_rng(0))
        >>> def level(ms):
        ...     return "ok" if ms < 100 else "warning" if ms < 200 else "critical"
        >>> len(points), {level(p.latency_p99_ms) for p in points[:60] + points[120:]}
        (180, {'ok'})
        >>> [level(points[i].latency_p99_ms) for i in (60, 64, 65, 114, 115, 119)]
        ['warning', 'warning', 'critical', 'critical', 'warning', 'warning']
    """
    if interval_seconds <= 0 or duration_seconds <= 0:
        raise ValueError("duration_seconds and interval_seconds must be > 0")
    offsets = np.arange(0.0, duration_seconds, interval_seconds)
    n = len(offsets)
    latency = 40.0 + 25.0 * rng.random(n)
    errors = 0.002 + 0.01 * rng.random(n)
    volume = rng.poisson(900, n)
    into = offsets - incident_start
    in_incident = (into >= 0) & (into < INCIDENT_SECONDS)
    ramp = in_incident & (
        (into < INCIDENT_RAMP_SECONDS) | (into >= INCIDENT_SECONDS - INCIDENT_RAMP_SECONDS)
    )
    latency = np.where(in_incident, 240.0 + 180.0 * rng.random(n), latency)
    latency = np.where(ramp, 120.0 + 60.0 * rng.random(n), latency)
    return [
        MetricPoint(float(offsets[i]), round(float(latency[i]), 1), round(float(errors[i]), 4),
                    int(volume[i]))
        for i in range(n)
    ]  # fmt: skip
