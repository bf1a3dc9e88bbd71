"""Event-time windows aligned to the Unix epoch, closed by a watermark.

Every monitoring agent uses the same two rules, so a replay gives the same windows as the
live run: a window is ``[start, start + size)`` with ``start`` a whole multiple of ``size``
since the epoch, and it closes once ``watermark - grace >= end``, where the watermark is
the newest event time the agent has seen. An event for a closed window is late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "check_window", "closes", "window_start"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_window(size: timedelta, grace: timedelta) -> None:
    """Raise ValueError unless ``size`` > 0 and ``grace`` >= 0 (both timedeltas).

    Example:
        >>> check_window(timedelta(0), timedelta(0))
        Traceback (most recent call last):
        ...
        ValueError: window size must be a timedelta > 0, got datetime.timedelta(0)
    """
    if not isinstance(size, timedelta) or size <= timedelta(0):
        raise ValueError(f"window size must be a timedelta > 0, got {size!r}")
    if not isinstance(grace, timedelta) or grace < timedelta(0):
        raise ValueError(f"grace must be a timedelta >= 0, got {grace!r}")


def window_start(moment: datetime, size: timedelta) -> datetime:
    """The start of the epoch-aligned window of length ``size`` that holds ``moment``.

    Example:
        >>> window_start(datetime(2026, 3, 2, 10, 59, 59, tzinfo=UTC), timedelta(hours=1))
        datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.timezone.utc)
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("event times must be timezone-aware")
    # Integer microseconds: float seconds would misplace events right at a boundary.
    return EPOCH + ((moment - EPOCH) // size) * size


def closes(end: datetime, watermark: datetime | None, grace: timedelta) -> bool:
    """Whether a window ending at ``end`` is closed at ``watermark``.

    Example:
        >>> end = datetime(2026, 3, 2, 11, tzinfo=UTC)
        >>> closes(end, end + timedelta(seconds=59), timedelta(minutes=1))
        False
        >>> closes(end, end + timedelta(minutes=1), timedelta(minutes=1))
        True
    """
    return watermark is not None and watermark - grace >= end
