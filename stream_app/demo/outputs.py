"""Reading the pipeline's report messages tolerantly: bare or wrapped, windows in any spelling.

The drift, A/B and alert agents publish ``to_dict()`` of the pure reports, possibly
wrapped with model, version and window fields. These helpers find the report inside the
wrapper and its window, whatever level and spelling carries it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "DriftFinding",
    "as_number",
    "drift_finding",
    "drift_severity",
    "find_report",
    "json_object",
    "key_text",
    "report_window",
    "sortable_time",
    "window_order",
]

_WINDOW_START = ("window_start", "start", "bucket_start", "interval_start")
_WINDOW_END = ("window_end", "end", "as_of", "interval_end", "timestamp")


@dataclass(frozen=True)
class DriftFinding:
    """One window whose drift report has a severity, and the features that drift in it."""

    window_start: str | None
    window_end: str | None
    severity: str
    features: tuple[str, ...]


def key_text(key: bytes | None) -> str:
    """A Kafka key as text ("" for none)."""
    return "" if key is None else key.decode(errors="replace")


def json_object(value: bytes) -> dict[str, Any]:
    """The JSON object in ``value``; ValueError for anything else."""
    document = json.loads(value)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def find_report(outer: dict[str, Any], marker: str) -> dict[str, Any]:
    """The report itself: ``outer`` when it has ``marker``, else the nested dict that has it.

    Example:
        >>> find_report({"model": "m", "report": {"recommendation": "use_b"}}, "recommendation")
        {'recommendation': 'use_b'}
        >>> find_report({"recommendation": "keep_a", "model": "m"}, "recommendation")["model"]
        'm'
    """
    if marker in outer:
        return outer
    for value in outer.values():
        if isinstance(value, dict) and marker in value:
            return value
    raise KeyError(marker)


def report_window(outer: dict[str, Any], report: dict[str, Any]) -> tuple[str | None, str | None]:
    """(start, end) of the report's window, from whichever level and spelling carries it.

    The report's own fields win over the wrapper's; a bare ``window`` value is the start.

    Example:
        >>> report_window({"window": {"start": "s", "end": "e"}}, {"x": 1})
        ('s', 'e')
        >>> report_window({"window_start": "outer"}, {"window_start": "own"})
        ('own', None)
        >>> report_window({"window": 7}, {})
        ('7', None)
    """
    found: dict[str, str | None] = {"start": None, "end": None}
    for level in (report, outer):
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


def drift_severity(report: Mapping[str, Any]) -> str:
    """A drift report's severity; a report naming drifting features is at least a warning."""
    stated = str(report.get("severity", "none"))
    if stated == "none" and report.get("drifting_features"):
        return "warning"
    return stated


def drift_finding(window: tuple[str | None, str | None], report: Mapping[str, Any]) -> DriftFinding:
    """The finding of one drift report: its drifting features, else those with a severity."""
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
    return DriftFinding(window[0], window[1], drift_severity(report), features)


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def sortable_time(text: str | None) -> str:
    """An ISO time in one spelling (UTC offset and ``Z`` alike), or the text as it is."""
    if text is None:
        return ""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def window_order(window: tuple[str | None, str | None]) -> tuple[str, str]:
    """A sort key for (start, end) windows."""
    return sortable_time(window[0]), sortable_time(window[1])
