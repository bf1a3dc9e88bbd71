"""The demo day: every message upstream sends, in event-time order, and the day's truth.

:func:`build_scenario` is pure and seeded: the same :class:`ScenarioConfig` gives the same
bytes. Requests draw their features from ``demo_model.synthetic_requests`` (the demo
bundles' training distribution) with ``shift_feature`` moved from ``shift_at_hours`` on
(see ``day_requests``); outcomes and the incident service's metrics come from
``upstream``. :class:`ScenarioTruth` says what the pipeline should find.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from schemas.events import Variant
from stream_app.demo.config import ScenarioConfig
from stream_app.demo.day_requests import DayRequests, Fate, client_name, day_requests
from stream_app.demo.faults import INVALID_KINDS, OVERSIZE_KIND, encode_body
from stream_app.demo.message import ScenarioMessage, iso_ms_many
from stream_app.demo.traffic import DAY_SECONDS
from stream_app.demo.upstream import (
    INCIDENT_SECONDS,
    conversions,
    outcome_delays,
    service_metric_points,
)
from stream_app.inference.features import build_features
from stream_app.inference.score import assign_variant

__all__ = [
    "Fate",
    "Scenario",
    "ScenarioConfig",
    "ScenarioMessage",
    "ScenarioTruth",
    "build_scenario",
]

_INCIDENT_HOURS = (14, 15, 16, 17, 18, 19)
_REASON_OF = {kind.name: kind.reason for kind in INVALID_KINDS} | {OVERSIZE_KIND: "too_large"}
_Raw = tuple[int, str, bytes | None, bytes]  # (milliseconds from start, topic, key, value)


@dataclass(frozen=True)
class ScenarioTruth:
    """What the pipeline should make of the day.

    ``fates``: request_id -> scored / throttled / invalid, for every request whose id can
    be read back; ``invalid_unidentified`` more (malformed or oversize) are invalid too.
    ``exposures`` and ``conversions`` count the scored requests per variant and their
    drawn conversions. ``pii_values``: every planted PII string.
    """

    start: datetime
    day_end: datetime
    end: datetime
    requests: int
    outcomes: int
    metric_points: int
    fates: Mapping[str, Fate]
    invalid_by_reason: Mapping[str, int]
    invalid_by_kind: Mapping[str, int]
    invalid_unidentified: int
    throttled_by_client: Mapping[str, int]
    unkeyed: int
    wrong_key: int
    untimed: int
    shift_feature: str
    shift_amount: float
    shift_at: datetime
    incident_service: str
    incident_start: datetime
    incident_end: datetime
    pii_values: tuple[str, ...]
    exposures: Mapping[Variant, int]
    conversions: Mapping[Variant, int]

    def count(self, fate: Fate) -> int:
        """How many identifiable requests end with ``fate``."""
        return sum(1 for value in self.fates.values() if value == fate)


@dataclass(frozen=True)
class Scenario:
    """The day's messages, ordered by event time, and its truth."""

    messages: tuple[ScenarioMessage, ...]
    truth: ScenarioTruth

    def counts(self) -> dict[str, int]:
        """Messages per topic attribute, in first-seen order."""
        return dict(Counter(m.topic for m in self.messages))


def build_scenario(config: ScenarioConfig | None = None) -> Scenario:
    """Generate the day; ``config`` defaults to ``ScenarioConfig()``.

    Example:
        >>> s = build_scenario(ScenarioConfig(n_requests=400, seed=3))
        >>> s.counts()["prediction_requests"], s.truth.throttled_by_client
        (400, {'client-04000': 25, 'client-04001': 25, 'client-04002': 25})
        >>> s.truth.shift_at.isoformat(), s.truth.incident_start.hour
        ('2026-01-01T12:00:00+00:00', 17)
        >>> all(a.timestamp <= b.timestamp for a, b in zip(s.messages, s.messages[1:]))
        True
    """
    cfg = config or ScenarioConfig()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(5)]
    day = day_requests(cfg, (rngs[0], rngs[1]))
    raw: list[_Raw] = [
        (slot.at_ms, "prediction_requests", key, value)
        for slot, (key, value) in zip(day.slots, day.messages, strict=True)
    ]
    variants, converted = _outcomes(cfg, day, rngs[2], raw)
    hour = cfg.incident_hour if cfg.incident_hour is not None else rngs[3].choice(_INCIDENT_HOURS)
    incident = float(hour) * 3600.0
    points = _metrics(cfg, incident, rngs[4], raw)
    raw.sort(key=lambda item: item[0])  # stable: equal times keep their generation order
    start_ms = _start_ms(cfg)
    messages = tuple(
        ScenarioMessage(topic, key, value, start_ms + at) for at, topic, key, value in raw
    )
    outcomes = (variants, converted)
    return Scenario(messages, _truth(cfg, day, messages, outcomes, incident, points))


def _truth(
    cfg: ScenarioConfig,
    day: DayRequests,
    messages: tuple[ScenarioMessage, ...],
    outcomes: tuple[list[Variant], list[int]],
    incident: float,
    points: int,
) -> ScenarioTruth:
    """The day's truth from its parts (incident: seconds from the start)."""
    variants, converted = outcomes
    kinds = Counter(slot.kind for slot in day.slots if slot.kind is not None)
    reasons: Counter[str] = Counter()
    for kind, count in kinds.items():
        reasons[_REASON_OF[kind]] += count
    roles = Counter(slot.role for slot in day.slots)
    return ScenarioTruth(
        start=cfg.start,
        day_end=cfg.start + timedelta(seconds=DAY_SECONDS),
        end=messages[-1].timestamp if messages else cfg.start,
        requests=len(day.slots),
        outcomes=len(variants),
        metric_points=points,
        fates=day.fates,
        invalid_by_reason=dict(sorted(reasons.items())),
        invalid_by_kind=dict(sorted(kinds.items())),
        invalid_unidentified=roles["invalid"] - sum(f == "invalid" for f in day.fates.values()),
        throttled_by_client={
            client_name(cfg.n_clients + b): cfg.over_limit_extra
            for b in range(cfg.over_limit_clients)
        },
        unkeyed=roles["unkeyed"],
        wrong_key=roles["wrong_key"],
        untimed=roles["untimed"],
        shift_feature=cfg.shift_feature,
        shift_amount=cfg.shift_amount,
        shift_at=cfg.start + timedelta(hours=cfg.shift_at_hours),
        incident_service=cfg.incident_service,
        incident_start=cfg.start + timedelta(seconds=incident),
        incident_end=cfg.start + timedelta(seconds=incident + INCIDENT_SECONDS),
        pii_values=day.pii_values,
        exposures={v: variants.count(v) for v in ("A", "B")},
        conversions={
            v: sum(c for w, c in zip(variants, converted, strict=True) if w == v)
            for v in ("A", "B")
        },
    )


def _outcomes(
    cfg: ScenarioConfig, day: DayRequests, rng: np.random.Generator, raw: list[_Raw]
) -> tuple[list[Variant], list[int]]:
    """An outcome for every scored request; returns the variants and conversions drawn."""
    scored = [i for i, rid in enumerate(day.request_ids) if day.fates.get(rid) == "scored"]
    drawn = [day.features[i] for i in scored]
    variants = [assign_variant(r.user_id, cfg.ab_experiment, cfg.ab_b_share) for r in drawn]
    converted = conversions(build_features(drawn), variants, cfg.b_uplift, rng).tolist()
    delays = np.rint(outcome_delays(len(scored), rng) * 1000).astype(np.int64)
    at = np.array([day.slots[i].at_ms for i in scored], dtype=np.int64) + delays
    stamps = iso_ms_many(_start_ms(cfg) + at)
    for i, flag, offset, stamp in zip(scored, converted, at.tolist(), stamps, strict=True):
        request_id = day.request_ids[i]
        value = {"request_id": request_id, "converted": flag, "timestamp": stamp}
        raw.append((offset, "outcomes", request_id.encode(), encode_body(value)))
    return variants, converted


def _metrics(
    cfg: ScenarioConfig, incident: float, rng: np.random.Generator, raw: list[_Raw]
) -> int:
    """The incident service's metrics for the whole day; returns how many points."""
    points = service_metric_points(
        DAY_SECONDS + cfg.flush_seconds, cfg.metrics_interval_seconds, incident, rng
    )
    key = cfg.incident_service.encode()
    offsets = np.array([round(p.offset * 1000) for p in points], dtype=np.int64)
    stamps = iso_ms_many(_start_ms(cfg) + offsets)
    for point, offset, stamp in zip(points, offsets.tolist(), stamps, strict=True):
        value = {
            "service": cfg.incident_service,
            "timestamp": stamp,
            "latency_p99_ms": point.latency_p99_ms,
            "error_rate": point.error_rate,
            "request_count": point.requests,
        }
        raw.append((offset, "service_metrics", key, encode_body(value)))
    return len(points)


def _start_ms(cfg: ScenarioConfig) -> int:
    return round(cfg.start.timestamp() * 1000)
