"""When a refused request is counted by the monitors: never later than it could be."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.events import Rejection
from stream_app.inference.intake import rejection_time
from stream_app.inference.validate import parse_request, too_large_rejection

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
STREAM = datetime(2026, 3, 1, tzinfo=UTC)


def _at(raw: bytes, stream_time: datetime | None = STREAM) -> datetime:
    rejection = parse_request(raw)
    assert isinstance(rejection, Rejection)
    return rejection_time(rejection, raw, NOW, max_ahead_seconds=300, stream_time=stream_time)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # its own readable timestamp, however old
        (b'{"request_id": "r", "age": 5, "timestamp": "2025-01-01T00:00:00Z"}',
         datetime(2025, 1, 1, tzinfo=UTC)),
        # within the allowed skew ahead of its arrival
        (b'{"request_id": "r", "age": 5, "timestamp": "2026-06-01T12:04:00Z"}',
         datetime(2026, 6, 1, 12, 4, tzinfo=UTC)),
        # ahead of its arrival by more than the skew: the partition's time instead
        (b'{"request_id": "r", "age": 5, "timestamp": "2100-01-01T00:00:00Z"}', STREAM),
        # no zone, not a date, not a string, absent, not JSON, nested 10,000 deep
        (b'{"request_id": "r", "age": 5, "timestamp": "2025-01-01T00:00:00"}', STREAM),
        (b'{"request_id": "r", "age": 5, "timestamp": "yesterday"}', STREAM),
        (b'{"request_id": "r", "age": 5, "timestamp": 1700000000}', STREAM),
        (b'{"request_id": "r", "age": 5}', STREAM),
        (b"{oops", STREAM),
        (b"[" * 10_000 + b"]" * 10_000, STREAM),
    ],
)  # fmt: skip
def test_a_refusal_is_counted_at_its_own_time_else_at_its_partitions(
    raw: bytes, expected: datetime
) -> None:
    assert _at(raw) == expected


def test_without_a_partition_time_or_with_one_after_the_arrival_it_is_the_arrival() -> None:
    assert _at(b"{oops", stream_time=None) == NOW
    assert _at(b"{oops", stream_time=datetime(2026, 7, 1, tzinfo=UTC)) == NOW


def test_an_oversize_message_is_not_parsed_for_its_time() -> None:
    raw = b'{"timestamp": "2025-01-01T00:00:00Z", "pad": "' + b"x" * 64 + b'"}'
    rejection = too_large_rejection(raw, 10)
    assert rejection_time(rejection, raw, NOW, max_ahead_seconds=300, stream_time=None) == NOW
