"""Small helpers of the demo report: drift findings and times as sortable text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DriftFinding", "iso", "sortable_time", "window_order"]


@dataclass(frozen=True)
class DriftFinding:
    """One window whose drift report has a severity, and the features that drift in it."""

    window_start: str | None
    window_end: str | None
    severity: str
    features: tuple[str, ...]


def iso(moment: datetime | None) -> str | None:
    """An event time as ISO-8601 text (None stays None).

    Example:
        >>> from datetime import UTC
        >>> iso(datetime(2026, 3, 2, 10, tzinfo=UTC)), iso(None)
        ('2026-03-02T10:00:00+00:00', None)
    """
    return None if moment is None else moment.isoformat()


def sortable_time(text: str | None) -> str:
    """An ISO time in one spelling (UTC offset and ``Z`` alike), or the text as it is.

    Example:
        >>> sortable_time("2026-03-02T10:00:00Z"), sortable_time("later"), sortable_time(None)
        ('2026-03-02T10:00:00+00:00', 'later', '')
    """
    if text is None:
        return ""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def window_order(window: tuple[str | None, str | None]) -> tuple[str, str]:
    """A sort key for (start, end) windows."""
    return sortable_time(window[0]), sortable_time(window[1])
