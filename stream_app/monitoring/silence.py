"""Silence: when no event has reached an input for a while, its open windows still close.

Event-time windows close when a newer event moves the watermark past them, so an
outage of all traffic would close no window and no volume alert could fire until the
traffic came back. A worker therefore sends itself a tick (``SilenceTick``) every few
seconds; the tick's record time is the worker's wall clock, which no producer of the
input can push. A fold that meets a tick compares that clock with the time its last
real event arrived (``arrived``, the same clock): once the gap is at least a window
plus the grace, the input is silent, and the watermark moves to the newest event time
heard plus the silence, as if an event had come at every moment of it. The open windows
then close as they are and empty ones follow, one per window of silence.

A replay (a backfill, the demo) keeps events arriving, so its gaps stay short by the
wall clock and the tick changes nothing, however far its event times trail the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["silent_watermark"]


def silent_watermark(
    heard: datetime | None,
    arrived: float | None,
    now: float,
    window: timedelta,
    grace: timedelta,
) -> datetime | None:
    """The watermark a silence stands for at the clock ``now``, or None while the input
    is not silent (or has never been heard from).

    ``heard`` is the newest event time of the input's events, ``arrived`` the clock
    (seconds) when the last of them arrived, ``now`` the tick's clock (seconds).

    Example:
        >>> from datetime import UTC
        >>> heard = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)
        >>> window, grace = timedelta(minutes=1), timedelta(seconds=30)
        >>> silent_watermark(heard, 1000.0, 1089.0, window, grace) is None  # 89 s: not yet
        True
        >>> silent_watermark(heard, 1000.0, 1090.0, window, grace).time()  # 90 s: silent
        datetime.time(10, 2)
        >>> silent_watermark(None, None, 1090.0, window, grace) is None
        True
    """
    if heard is None or arrived is None:
        return None
    quiet = timedelta(seconds=now - arrived)
    if quiet < window + grace:
        return None
    return heard + quiet
