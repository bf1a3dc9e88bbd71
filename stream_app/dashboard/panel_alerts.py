"""The alerts panel's input, read from alerts messages (the one place that knows their shape).

:func:`alerts_panel` groups the events by rule and service into tracks of marks (firing,
escalated, deescalated, resolved) and episodes (from firing to resolved, or still open),
and lists what fires now: the episodes whose last event is not ``resolved``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["AlertMark", "AlertTrack", "AlertsPanel", "Firing", "alerts_panel"]


@dataclass(frozen=True)
class AlertMark:
    """One event on a track."""

    at: datetime
    kind: str
    severity: str


@dataclass(frozen=True)
class AlertTrack:
    """One rule of one service: its events in time order and its episodes."""

    rule: str
    service: str
    marks: tuple[AlertMark, ...]
    episodes: tuple[tuple[datetime, datetime | None], ...]  # (start, end or None: open)


@dataclass(frozen=True)
class Firing:
    """An alert firing now."""

    rule: str
    service: str
    severity: str
    since: datetime
    value: float | None


@dataclass(frozen=True)
class AlertsPanel:
    """Every track, and what fires now."""

    tracks: tuple[AlertTrack, ...]
    firing: tuple[Firing, ...]


def _track(rule: str, service: str, events: Sequence[Mapping[str, Any]]) -> AlertTrack:
    marks = tuple(
        AlertMark(datetime.fromisoformat(e["timestamp"]), str(e["kind"]), str(e.get("severity")))
        for e in events
    )
    episodes: dict[str, list[datetime | None]] = {}
    for e, mark in zip(events, marks, strict=True):
        span = episodes.setdefault(str(e["fingerprint"]), [mark.at, None])
        if mark.kind == "resolved":
            span[1] = mark.at
    spans = tuple((s[0], s[1]) for s in episodes.values() if s[0] is not None)
    return AlertTrack(rule, service, marks, spans)


def alerts_panel(messages: Sequence[Mapping[str, Any]]) -> AlertsPanel | None:
    """Tracks and firing alerts of ``messages`` (alerts values); None without any.

    Example:
        >>> def event(kind, at):
        ...     return {"kind": kind, "rule": "error_rate", "service": "api",
        ...             "severity": "warning", "value": 0.1, "fingerprint": "f1",
        ...             "timestamp": f"2026-03-02T{at}:00+00:00"}
        >>> panel = alerts_panel([event("firing", "10"), event("resolved", "12")])
        >>> [m.kind for m in panel.tracks[0].marks], panel.firing
        (['firing', 'resolved'], ())
        >>> alerts_panel([event("firing", "10")]).firing[0].since.hour
        10
    """
    if not messages:
        return None
    ordered = sorted(messages, key=lambda e: str(e["timestamp"]))
    by_track: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    last: dict[str, Mapping[str, Any]] = {}
    started: dict[str, str] = {}
    for e in ordered:
        by_track.setdefault((str(e["rule"]), str(e.get("service", "-"))), []).append(e)
        last[str(e["fingerprint"])] = e
        started.setdefault(str(e["fingerprint"]), str(e.get("started_at") or e["timestamp"]))
    firing = tuple(
        Firing(str(e["rule"]), str(e.get("service", "-")), str(e.get("severity")),
               datetime.fromisoformat(started[fp]),
               float(e["value"]) if isinstance(e.get("value"), int | float) else None)
        for fp, e in last.items() if e["kind"] != "resolved"
    )  # fmt: skip
    tracks = tuple(_track(rule, service, events)
                   for (rule, service), events in sorted(by_track.items()))  # fmt: skip
    return AlertsPanel(tracks, firing)
