"""The dashboard's consumer lag: only partitions of the topic with a known read position."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from agents.dashboard import consumer_lag

REQUESTS = "prediction-requests"


def app_with(read: dict[TP, int | None], high: dict[TP, int | None]) -> Any:
    consumer = SimpleNamespace(
        _read_offset=read, assignment=lambda: set(high), highwater=lambda tp: high[tp]
    )
    return SimpleNamespace(consumer=consumer)


def test_lag_sums_the_read_partitions_of_the_topic() -> None:
    p0, p1, other = TP(REQUESTS, 0), TP(REQUESTS, 1), TP("outcomes", 0)
    # p0 read up to offset 9 of 15 written, p1 up to its end, other topics do not count.
    app = app_with({p0: 9, p1: 4, other: 0}, {p0: 15, p1: 5, other: 90})
    assert consumer_lag(app, REQUESTS) == 5


def test_a_partition_not_read_since_its_assignment_is_left_out() -> None:
    p0, p1 = TP(REQUESTS, 0), TP(REQUESTS, 1)
    assert consumer_lag(app_with({p0: 2}, {p0: 3, p1: 1_000}), REQUESTS) == 0
    assert consumer_lag(app_with({}, {p0: 3}), REQUESTS) is None


def test_an_unknown_highwater_is_left_out() -> None:
    p0 = TP(REQUESTS, 0)
    assert consumer_lag(app_with({p0: 2}, {p0: None}), REQUESTS) is None
