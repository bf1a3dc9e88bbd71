"""The demo report as text: a stable part (same seed, same text) and a measured part.

Everything computed from event data (counts, windows, conversions, alert times) is in the
stable part. Figures of the machine — throughput and the latencies the scorer measured
in wall-clock time — come last, under :data:`MEASURED_HEADER`, so a test compares the
text up to there (:func:`stable_part`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stream_app.demo.report import REQUEST_REASONS, AlertRecord, DemoSummary

__all__ = ["MEASURED_HEADER", "RunFacts", "render_report", "stable_part"]

MEASURED_HEADER = "Measured on this machine (wall clock; varies from run to run)"


@dataclass(frozen=True)
class RunFacts:
    """What the player knows about the run: messages sent per topic, wall time, services.

    ``own_services`` are the services whose metrics the app publishes itself; their
    latency is wall-clock, so it goes to the measured part. ``app_id`` is the run's own
    (fresh per run); services named after it are shown as ``app`` (``app.drift``...), so
    two runs of one seed print the same text.
    """

    sent: Mapping[str, int]
    wall_seconds: float
    own_services: frozenset[str] = field(default_factory=frozenset)
    app_id: str | None = None

    def label(self, service: str) -> str:
        """The name the report shows for ``service``.

        Example:
            >>> facts = RunFacts({}, 1.0, app_id="demo-1234")
            >>> facts.label("demo-1234"), facts.label("demo-1234.drift"), facts.label("api")
            ('app', 'app.drift', 'api')
        """
        app = self.app_id
        if app and (service == app or service.startswith(app + ".")):
            return "app" + service[len(app) :]
        return service


def stable_part(text: str) -> str:
    """The report up to the measured part (what the same seed must reproduce).

    Example:
        >>> stable_part("a\\nb\\n" + MEASURED_HEADER + "\\nthroughput: 9 events/s\\n")
        'a\\nb\\n'
    """
    head, _, _ = text.partition(MEASURED_HEADER)
    return head


def render_report(summary: DemoSummary, run: RunFacts) -> str:
    """The readable report of one demo run.

    Example:
        >>> from stream_app.demo.report import ReportBuilder
        >>> text = render_report(ReportBuilder().summary(),
        ...                      RunFacts({"prediction_requests": 0}, wall_seconds=1.0))
        >>> print(stable_part(text).splitlines()[3])
        predictions: 0
    """
    lines = ["stream-app demo report", "=" * 22]
    lines += _traffic(summary, run.sent)
    lines += _drift(summary)
    lines += _ab(summary.ab_final, summary.ab_window_end, summary.ab_reports)
    lines += _alerts(summary.alerts, run)
    lines += _services(summary, run)
    lines += ["", MEASURED_HEADER, "-" * len(MEASURED_HEADER)]
    lines += _measured(summary, run)
    return "\n".join(lines) + "\n"


def _n(value: int | float) -> str:
    return f"{value:,.0f}"


def _items(counts: Mapping[str, int | float]) -> str:
    return ", ".join(f"{name} {_n(count)}" for name, count in counts.items())


def _breakdown(counts: Mapping[str, int]) -> str:
    inner = _items(counts)
    return f" ({inner})" if inner else ""


def _when(text: str | None) -> str:
    if not text:
        return "?"
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


def _traffic(s: DemoSummary, sent: Mapping[str, int]) -> list[str]:
    lines = [f"events in: {_n(sum(sent.values()))}{_breakdown(sent)}"]
    lines.append(f"predictions: {_n(s.predictions)}{_breakdown(s.predictions_by_variant)}")
    if s.predictions_by_version:
        lines.append(f"  by model version: {_items(s.predictions_by_version)}")
    requests_invalid = {r: n for r, n in s.invalid_by_reason.items() if r in REQUEST_REASONS}
    lines.append(f"invalid: {_n(s.invalid_requests)}{_breakdown(requests_invalid)}")
    lines.append(f"throttled: {_n(s.throttled)}{_breakdown(s.throttled_by_client)}")
    requests = sent.get("prediction_requests")
    if requests is not None:
        accounted = s.predictions + s.invalid_requests + s.throttled
        lines.append(f"requests accounted for: {_n(accounted)} of {_n(requests)}")
    unmatched = s.invalid_by_reason.get("unknown_outcome", 0)
    if unmatched:
        lines.append(f"outcomes for unknown requests: {_n(unmatched)}")
    if s.replayed:
        lines.append(f"replayed outputs recognised and counted once: {_n(s.replayed)}")
    if s.unreadable:
        lines.append(f"unreadable output messages: {_items(s.unreadable)}")
    return lines


def _drift(s: DemoSummary) -> list[str]:
    lines = ["", f"drift: {_n(s.drift_windows)} windows reported, {len(s.drift_found)} with drift"]
    by_feature: dict[str, list[str]] = {}
    worst: dict[str, str] = {}
    for finding in s.drift_found:
        for name in finding.features or ("(unnamed)",):
            by_feature.setdefault(name, []).append(finding.window_start or "?")
            if finding.severity == "critical" or name not in worst:
                worst[name] = finding.severity
    for name, starts in by_feature.items():
        lines.append(
            f"  {name}: {worst[name]}, first in the window from {_when(starts[0])}, "
            f"{len(starts)} window{'s' if len(starts) != 1 else ''}"
        )
    return lines


def _ab(report: Mapping[str, Any] | None, window_end: str | None, count: int) -> list[str]:
    if report is None:
        return ["", "A/B: no report"]
    lines = ["", f"A/B: final of {count} reports (up to {_when(window_end)})"]
    for arm in ("a", "b"):
        n, conversions = report.get(f"n_{arm}"), report.get(f"conversions_{arm}")
        rate = report.get(f"conversion_rate_{arm}")
        if isinstance(n, int) and isinstance(rate, int | float):
            lines.append(f"  {arm.upper()}: {_n(n)} exposed, {conversions} converted ({rate:.2%})")
    decided = report.get("decided_by", "chi2")
    p = report.get("sequential_p_value" if decided == "sequential" else "p_value")
    if isinstance(p, int | float):
        lines.append(f"  p-value ({decided}): {p:.3g}; significant: {report.get('significant')}")
    if isinstance(report.get("srm_p_value"), int | float):
        lines.append(f"  sample ratio check p-value: {report['srm_p_value']:.3g}")
    lines.append(f"  recommendation: {report.get('recommendation', '?')}")
    return lines


def _wall_clock(alert: AlertRecord, run: RunFacts) -> bool:
    """An alert on a latency the app measured itself: it varies from run to run."""
    return run.label(alert.service) != alert.service and "latency" in alert.rule


def _alert_line(a: AlertRecord, run: RunFacts) -> str:
    value = "" if a.value is None else f" value {a.value:g}"
    threshold = "" if a.threshold is None else f" (threshold {a.threshold:g})"
    return (
        f"  {_when(a.timestamp)}  {a.kind:<11} {a.rule} [{run.label(a.service)}] "
        f"{a.severity}{value}{threshold}"
    )


def _alerts(alerts: Iterable[AlertRecord], run: RunFacts) -> list[str]:
    records = [a for a in alerts if not _wall_clock(a, run)]
    fired = sum(a.kind == "firing" for a in records)
    resolved = sum(a.kind == "resolved" for a in records)
    lines = ["", f"alerts: {fired} fired, {resolved} resolved, {fired - resolved} still firing"]
    lines += [_alert_line(a, run) for a in records]
    return lines


def _services(s: DemoSummary, run: RunFacts) -> list[str]:
    lines = ["", f"service metrics: {len(s.services)} services"]
    own = run.own_services
    for name, f in sorted(s.services.items(), key=lambda kv: run.label(kv[0])):
        parts = [f"{_n(f.points)} point{'s' if f.points != 1 else ''}"]
        if f.peak_latency_p99_ms is not None and name not in own:
            parts.append(
                f"latency p99 peak {f.peak_latency_p99_ms:g} ms at {_when(f.peak_latency_at)}"
            )
        if f.max_error_rate is not None:
            parts.append(f"error rate max {f.max_error_rate:.2%}")
        if f.prediction_volume:
            parts.append(f"volume {_n(f.prediction_volume)}")
        lines.append(f"  {run.label(name)}: {', '.join(parts)}")
    return lines


def _measured(s: DemoSummary, run: RunFacts) -> list[str]:
    events = sum(run.sent.values())
    rate = events / run.wall_seconds if run.wall_seconds > 0 else 0.0
    lines = [f"throughput: {_n(rate)} events/s ({_n(events)} events in {run.wall_seconds:.1f} s)"]
    report = s.ab_final or {}
    for arm in ("a", "b"):
        mean, p95 = report.get(f"latency_mean_{arm}"), report.get(f"latency_p95_{arm}")
        if isinstance(mean, int | float) and isinstance(p95, int | float):
            lines.append(f"scoring latency {arm.upper()}: mean {mean:.2f} ms, p95 {p95:.2f} ms")
    if isinstance(report.get("latency_increase_pct"), int | float):
        lines.append(f"latency increase B over A: {report['latency_increase_pct']:.1f} %")
    for name in sorted(run.own_services & set(s.services)):
        peak = s.services[name].peak_latency_p99_ms
        if peak is not None:
            lines.append(f"{run.label(name)} latency p99 peak: {peak:g} ms")
    timed = [a for a in s.alerts if _wall_clock(a, run)]
    if timed:
        lines.append(f"alerts on the app's own latencies: {len(timed)} events")
        lines += [_alert_line(a, run) for a in timed]
    return lines
