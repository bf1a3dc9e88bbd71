"""Fold what the pipeline wrote into a :class:`DemoSummary` (rendered by ``report_text``).

:class:`ReportBuilder` takes the messages read back from the output topics, in any
number and any order within a topic, and decodes each with its topic's contract
(``schemas.contracts``). It tolerates what a live run gives: a replayed message is
counted once (by request_id, by drift window, by A/B interval, by alert event). A
message its contract refuses is counted per topic, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.alerts import AlertMessage
from schemas.codec import decode
from schemas.events import Prediction, Rejection, ThrottledRequest
from schemas.metrics import AppServiceMetrics
from schemas.reports import ABReportMessage, DriftReportMessage
from stream_app.demo.outputs import DriftFinding, iso, sortable_time, window_order

__all__ = [
    "REQUEST_REASONS",
    "AlertRecord",
    "DemoSummary",
    "DriftFinding",
    "ReportBuilder",
    "ServiceFigures",
]

# Rejection reasons that stand for a request (unknown_outcome stands for an outcome).
REQUEST_REASONS = ("malformed_json", "schema", "timestamp_ahead", "too_large", "scoring_failed")


@dataclass(frozen=True)
class AlertRecord:
    """One alert event as published (service "-" when the event names none)."""

    kind: str
    rule: str
    service: str
    severity: str
    value: float | None
    threshold: float | None
    timestamp: str
    fingerprint: str


@dataclass(frozen=True)
class ServiceFigures:
    """What one service reported on service-metrics over the run."""

    points: int
    peak_latency_p99_ms: float | None = None
    peak_latency_at: str | None = None
    max_error_rate: float | None = None
    prediction_volume: float = 0.0


@dataclass(frozen=True)
class DemoSummary:
    """Everything the report says, folded from the output topics."""

    predictions_by_variant: Mapping[str, int]
    predictions_by_version: Mapping[str, int]
    invalid_by_reason: Mapping[str, int]
    throttled_by_client: Mapping[str, int]
    drift_windows: int
    drift_found: tuple[DriftFinding, ...]
    drift_last_end: str | None
    ab_reports: int
    ab_final: Mapping[str, Any] | None
    ab_window_end: str | None
    alerts: tuple[AlertRecord, ...]
    services: Mapping[str, ServiceFigures]
    replayed: int = 0
    unreadable: Mapping[str, int] = field(default_factory=dict)

    @property
    def predictions(self) -> int:
        return sum(self.predictions_by_variant.values())

    @property
    def invalid_requests(self) -> int:
        return sum(n for r, n in self.invalid_by_reason.items() if r in REQUEST_REASONS)

    @property
    def throttled(self) -> int:
        return sum(self.throttled_by_client.values())


class ReportBuilder:
    """Add output messages with :meth:`add`, then read :meth:`summary`.

    Example:
        >>> builder = ReportBuilder()
        >>> builder.add("predictions", b"r1", b'{"request_id": "r1", "model_name": "m",'
        ...     b' "model_version": "1.0.0", "variant": "A", "score": 0.7, "label": 1,'
        ...     b' "latency_ms": 2.5}')
        >>> builder.add("predictions", b"r1", b'{"request_id": "r1", "model_name": "m",'
        ...     b' "model_version": "1.0.0", "variant": "A", "score": 0.7, "label": 1,'
        ...     b' "latency_ms": 2.5}')
        >>> builder.add("alerts", b"f1", b"not json")
        >>> s = builder.summary()
        >>> s.predictions, s.replayed, dict(s.unreadable)
        (1, 1, {'alerts': 1})
    """

    def __init__(self) -> None:
        self._predictions: dict[str, tuple[str, str]] = {}
        self._invalid: Counter[str] = Counter()
        self._invalid_seen: set[tuple[str, str]] = set()
        self._throttled: dict[str, str] = {}
        self._drift: dict[str, DriftReportMessage] = {}
        self._ab: dict[tuple[object, ...], ABReportMessage] = {}
        self._alerts: dict[tuple[str, str, str], AlertRecord] = {}
        self._services: dict[str, ServiceFigures] = {}
        self._replayed = 0
        self._unreadable: Counter[str] = Counter()
        self._readers = {
            "predictions": self._prediction,
            "requests_invalid": self._rejection,
            "requests_throttled": self._throttle,
            "drift_reports": self._drift_report,
            "ab_reports": self._ab_report,
            "alerts": self._alert,
            "service_metrics": self._service_metrics,
        }

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Fold one message of ``topic`` (an attribute of ``Topics``); others are ignored."""
        reader = self._readers.get(topic)
        if reader is None:
            return
        try:
            reader(key, value)
        except (ValidationError, ValueError, TypeError, KeyError):
            self._unreadable[topic] += 1

    def _prediction(self, key: bytes | None, value: bytes) -> None:
        p = Prediction.model_validate_json(value)
        if p.request_id in self._predictions:
            self._replayed += 1
        self._predictions[p.request_id] = (p.variant, p.model_version)

    def _rejection(self, key: bytes | None, value: bytes) -> None:
        r = Rejection.model_validate_json(value)
        if r.request_id is not None:
            if (r.reason, r.request_id) in self._invalid_seen:
                self._replayed += 1
                return
            self._invalid_seen.add((r.reason, r.request_id))
        self._invalid[r.reason] += 1

    def _throttle(self, key: bytes | None, value: bytes) -> None:
        t = ThrottledRequest.model_validate_json(value)
        if t.request_id in self._throttled:
            self._replayed += 1
        self._throttled[t.request_id] = t.client_id

    def _drift_report(self, key: bytes | None, value: bytes) -> None:
        m = decode(value, DriftReportMessage)
        if m.window_id in self._drift:
            self._replayed += 1
        self._drift[m.window_id] = m

    def _ab_report(self, key: bytes | None, value: bytes) -> None:
        m = decode(value, ABReportMessage)
        seen = (m.model, m.serving_version, m.challenger_version, m.interval_end)
        if seen in self._ab:
            self._replayed += 1
        self._ab[seen] = m

    def _alert(self, key: bytes | None, value: bytes) -> None:
        m = decode(value, AlertMessage)
        record = AlertRecord(
            kind=m.kind, rule=m.rule, service=m.service, severity=m.severity, value=m.value,
            threshold=m.threshold, timestamp=m.timestamp.isoformat(), fingerprint=m.fingerprint,
        )  # fmt: skip
        seen = (record.fingerprint, record.kind, record.timestamp)
        if seen in self._alerts:
            self._replayed += 1
        self._alerts[seen] = record

    def _service_metrics(self, key: bytes | None, value: bytes) -> None:
        m = decode(value, AppServiceMetrics)
        name = m.service or (key or b"-").decode(errors="replace")
        self._services[name] = _add_point(self._services.get(name), m)

    def summary(self) -> DemoSummary:
        """The summary of everything added so far."""
        variants = Counter(v for v, _ in self._predictions.values())
        versions = Counter(version for _, version in self._predictions.values())
        windows = sorted(self._drift.values(), key=lambda m: window_order(_window(m)))
        findings = tuple(
            DriftFinding(*_window(m), m.severity, m.drifting_features)
            for m in windows
            if m.severity != "none"
        )
        final = max(self._ab.values(), key=lambda m: m.interval_end, default=None)
        alerts = sorted(self._alerts.values(), key=lambda a: (sortable_time(a.timestamp), a.rule))
        return DemoSummary(
            predictions_by_variant=dict(sorted(variants.items())),
            predictions_by_version=dict(sorted(versions.items())),
            invalid_by_reason=dict(sorted(self._invalid.items())),
            throttled_by_client=dict(sorted(Counter(self._throttled.values()).items())),
            drift_windows=len(self._drift),
            drift_found=findings,
            drift_last_end=max(
                (iso(m.window_end) for m in windows if m.window_end),
                key=sortable_time,
                default=None,
            ),  # fmt: skip
            ab_reports=len(self._ab),
            ab_final=None if final is None else final.report.model_dump(),
            ab_window_end=None if final is None else iso(final.interval_end),
            alerts=tuple(alerts),
            services=dict(sorted(self._services.items())),
            replayed=self._replayed,
            unreadable=dict(sorted(self._unreadable.items())),
        )


def _window(m: DriftReportMessage) -> tuple[str | None, str | None]:
    return iso(m.window_start), iso(m.window_end)


def _add_point(figures: ServiceFigures | None, m: AppServiceMetrics) -> ServiceFigures:
    old = figures or ServiceFigures(points=0)
    peak, peak_at = old.peak_latency_p99_ms, old.peak_latency_at
    if m.latency_p99_ms is not None and (peak is None or m.latency_p99_ms > peak):
        peak, peak_at = m.latency_p99_ms, m.timestamp.isoformat()
    errors = old.max_error_rate
    if m.error_rate is not None and (errors is None or m.error_rate > errors):
        errors = m.error_rate
    return ServiceFigures(
        points=old.points + 1,
        peak_latency_p99_ms=peak,
        peak_latency_at=peak_at,
        max_error_rate=errors,
        prediction_volume=old.prediction_volume + (m.prediction_volume or 0.0),
    )
