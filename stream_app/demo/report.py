"""Fold what the pipeline wrote into a :class:`DemoSummary` (rendered by ``report_text``).

:class:`ReportBuilder` takes the messages read back from the output topics, in any
number and any order within a topic, and tolerates what a live run gives: a replayed
message (counted once, by request_id or by report window), extra fields, and a report
either bare (``DriftReport.to_dict()``, ``ABReport.to_dict()``, ``AlertEvent.to_dict()``)
or wrapped with model, version and window fields (the report then one level down). A
message it cannot read is counted per topic, never raised.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import Prediction, Rejection, ServiceMetrics, ThrottledRequest

__all__ = [
    "REQUEST_REASONS",
    "AlertRecord",
    "DemoSummary",
    "DriftFinding",
    "ReportBuilder",
    "ServiceFigures",
]

# Rejection reasons that stand for a request (unknown_outcome stands for an outcome).
REQUEST_REASONS = ("malformed_json", "schema", "too_large", "scoring_failed")
_WINDOW_START = ("window_start", "start", "bucket_start", "interval_start")
_WINDOW_END = ("window_end", "end", "as_of", "interval_end", "timestamp")


@dataclass(frozen=True)
class DriftFinding:
    """One window whose drift report has a severity, and the features that drift in it."""

    window_start: str | None
    window_end: str | None
    severity: str
    features: tuple[str, ...]


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
        self._drift: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        self._ab: dict[tuple[str | None, str | None], tuple[int, dict[str, Any]]] = {}
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
        if t.request.request_id in self._throttled:
            self._replayed += 1
        self._throttled[t.request.request_id] = t.request.client_id

    def _drift_report(self, key: bytes | None, value: bytes) -> None:
        outer = _object(value)
        report = _inner(outer, "drifting_features")
        self._drift[_window(outer, report)] = report

    def _ab_report(self, key: bytes | None, value: bytes) -> None:
        outer = _object(value)
        report = _inner(outer, "recommendation")
        self._ab[_window(outer, report)] = (len(self._ab), report)

    def _alert(self, key: bytes | None, value: bytes) -> None:
        outer = _object(value)
        event = _inner(outer, "rule")
        service = event.get("service") or outer.get("service") or "-"
        record = AlertRecord(
            kind=str(event["kind"]),
            rule=str(event["rule"]),
            service=str(service),
            severity=str(event.get("severity", "-")),
            value=_number(event.get("value")),
            threshold=_number(event.get("threshold")),
            timestamp=str(event.get("timestamp") or outer.get("timestamp") or ""),
            fingerprint=str(event.get("fingerprint") or _text(key)),
        )
        seen = (record.fingerprint, record.kind, record.timestamp)
        if seen in self._alerts:
            self._replayed += 1
        self._alerts[seen] = record

    def _service_metrics(self, key: bytes | None, value: bytes) -> None:
        m = ServiceMetrics.model_validate_json(value)
        name = m.service or _text(key) or "-"
        self._services[name] = _add_point(self._services.get(name), m)

    def summary(self) -> DemoSummary:
        """The summary of everything added so far."""
        variants = Counter(v for v, _ in self._predictions.values())
        versions = Counter(version for _, version in self._predictions.values())
        findings = tuple(
            _finding(window, report)
            for window, report in sorted(self._drift.items(), key=lambda kv: _order(kv[0]))
            if _severity(report) != "none"
        )
        final: tuple[tuple[str | None, str | None], tuple[int, dict[str, Any]]] | None = None
        if self._ab:
            final = max(self._ab.items(), key=lambda kv: (_order((kv[0][1], None)), kv[1][0]))
        alerts = sorted(self._alerts.values(), key=lambda a: (_sortable(a.timestamp), a.rule))
        return DemoSummary(
            predictions_by_variant=dict(sorted(variants.items())),
            predictions_by_version=dict(sorted(versions.items())),
            invalid_by_reason=dict(sorted(self._invalid.items())),
            throttled_by_client=dict(sorted(Counter(self._throttled.values()).items())),
            drift_windows=len(self._drift),
            drift_found=findings,
            ab_reports=len(self._ab),
            ab_final=None if final is None else final[1][1],
            ab_window_end=None if final is None else final[0][1],
            alerts=tuple(alerts),
            services=dict(sorted(self._services.items())),
            replayed=self._replayed,
            unreadable=dict(sorted(self._unreadable.items())),
        )


def _text(key: bytes | None) -> str:
    return "" if key is None else key.decode(errors="replace")


def _object(value: bytes) -> dict[str, Any]:
    document = json.loads(value)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def _inner(outer: dict[str, Any], marker: str) -> dict[str, Any]:
    """The report itself: ``outer`` when it has ``marker``, else the one nested dict that has."""
    if marker in outer:
        return outer
    for value in outer.values():
        if isinstance(value, dict) and marker in value:
            return value
    raise KeyError(marker)


def _window(outer: dict[str, Any], inner: dict[str, Any]) -> tuple[str | None, str | None]:
    """(start, end) of the report's window, from whichever level and spelling carries it."""
    found: dict[str, str | None] = {"start": None, "end": None}
    for level in (inner, outer):
        window = level.get("window")
        candidates = [level, window] if isinstance(window, dict) else [level]
        for source in candidates:
            for slot, names in (("start", _WINDOW_START), ("end", _WINDOW_END)):
                for name in names:
                    if found[slot] is None and source.get(name) is not None:
                        found[slot] = str(source[name])
        if isinstance(window, str | int) and found["start"] is None:
            found["start"] = str(window)
    return found["start"], found["end"]


def _severity(report: Mapping[str, Any]) -> str:
    severity = str(report.get("severity", "none"))
    if severity == "none" and report.get("drifting_features"):
        return "warning"
    return severity


def _finding(window: tuple[str | None, str | None], report: Mapping[str, Any]) -> DriftFinding:
    features = tuple(str(name) for name in report.get("drifting_features") or ())
    if not features:
        per_feature = report.get("features") or {}
        features = tuple(
            sorted(
                name
                for name, verdict in per_feature.items()
                if isinstance(verdict, dict) and verdict.get("severity", "none") != "none"
            )
        )
    return DriftFinding(window[0], window[1], _severity(report), features)


def _add_point(figures: ServiceFigures | None, m: ServiceMetrics) -> ServiceFigures:
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


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _sortable(text: str | None) -> str:
    """An ISO time in one spelling (UTC offset and ``Z`` alike), or the text as it is."""
    if text is None:
        return ""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def _order(window: tuple[str | None, str | None]) -> tuple[str, str]:
    return _sortable(window[0]), _sortable(window[1])
