"""Epoch-aligned windows and the watermark rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream_app.monitoring.event_time import closes, window_start

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("moment", "size", "start"),
    [
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), MINUTE, datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        (datetime(2026, 3, 2, 10, 0, 59, 999999, tzinfo=UTC), MINUTE,
         datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
        (datetime(2026, 3, 2, 10, 59, tzinfo=UTC), timedelta(hours=1),
         datetime(2026, 3, 2, 10, tzinfo=UTC)),
        # Another offset, same instant: same window, in UTC.
        (datetime(2026, 3, 2, 12, 30, tzinfo=timezone(timedelta(hours=2))), timedelta(hours=1),
         datetime(2026, 3, 2, 10, tzinfo=UTC)),
        # Aligned to the epoch, not to the day: 7-minute windows.
        (datetime(1970, 1, 1, 0, 15, tzinfo=UTC), 7 * MINUTE,
         datetime(1970, 1, 1, 0, 14, tzinfo=UTC)),
        (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), 7 * MINUTE,
         datetime(1969, 12, 31, 23, 53, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_window_start(moment: datetime, size: timedelta, start: datetime) -> None:
    assert window_start(moment, size) == start


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_start(datetime(2026, 3, 2), MINUTE)


@pytest.mark.parametrize(
    ("watermark", "grace", "closed"),
    [
        (None, timedelta(0), False),
        (datetime(2026, 3, 2, 11, tzinfo=UTC), timedelta(0), True),
        (datetime(2026, 3, 2, 11, tzinfo=UTC), timedelta(seconds=1), False),
        (datetime(2026, 3, 2, 10, 59, tzinfo=UTC), timedelta(0), False),
    ],
)
def test_closes(watermark: datetime | None, grace: timedelta, closed: bool) -> None:
    assert closes(datetime(2026, 3, 2, 11, tzinfo=UTC), watermark, grace) is closed
