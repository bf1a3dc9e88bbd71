"""The expiry index: buckets, slices under a limit, forgetting, adopted keys."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from stream_app.expiry import ExpiryIndex


def test_a_limit_spans_buckets_oldest_first_then_waits() -> None:
    index = ExpiryIndex(idle_after=80.0)  # buckets of 10
    for key in (b"a1", b"a2"):
        index.touch(0, key, 5.0)
    for key in (b"b1", b"b2", b"b3", b"b4"):
        index.touch(0, key, 15.0)
    assert index.due(0, 200.0, limit=5) == [b"a1", b"a2", b"b1", b"b2", b"b3"]
    assert index.due(0, 200.0, limit=5) == [b"b4"]
    assert index.due(0, 200.0) == [] and len(index) == 0


def test_buckets_are_an_eighth_of_the_idle_period_wide() -> None:
    index = ExpiryIndex(idle_after=20.0)  # buckets of 2.5: [2.5, 5) holds 4.9
    index.touch(0, b"k", 4.9)
    assert index.due(0, 24.9) == []  # the bucket ends at 5.0, due from 25.0
    assert index.due(0, 25.0) == [b"k"]


def test_forgetting_one_key_keeps_the_others_of_its_bucket() -> None:
    index = ExpiryIndex(idle_after=80.0)
    index.touch(0, b"gone", 5.0)
    index.touch(0, b"kept", 6.0)
    index.forget(0, b"gone")
    index.forget(0, b"never filed")  # nothing to do
    assert index.due(0, 200.0) == [b"kept"]
    index.touch(1, b"only", 5.0)
    index.forget(1, b"only")
    assert index.due(1, 200.0) == [] and len(index) == 0


def test_a_key_written_again_in_its_bucket_keeps_its_place() -> None:
    index = ExpiryIndex(idle_after=80.0)
    at = 1_000_000.0  # a bucket number far past Python's small-integer cache
    index.touch(0, b"k", at)
    index.touch(0, b"j", at + 1)
    index.touch(0, b"k", at + 2)
    assert len(index) == 2
    assert index.due(0, at + 200.0) == [b"k", b"j"]


def test_an_adopted_key_written_since_keeps_its_newer_bucket() -> None:
    index = ExpiryIndex(idle_after=80.0)
    index.adopt(0, [b"k", b"other"])
    index.touch(0, b"k", 150.0)
    assert index.due(0, 100.0) == []  # files "other" at 100, leaves k at 150
    assert index.due(0, 190.0) == [b"other"]
    assert index.due(0, 240.0) == [b"k"]


def test_a_key_adopted_twice_or_already_filed_is_filed_once_and_never_moved() -> None:
    # After a rocksdb:// restart a key can come from the changelog's tail and from the
    # scan of its partition's database, and may have been written meanwhile.
    index = ExpiryIndex(idle_after=80.0)  # buckets of 10
    index.touch(0, b"written", 150.0)
    index.adopt(0, [b"old", b"written"])
    index.adopt(0, [b"old"])
    assert index.due(0, 200.0) == [] and len(index) == 2  # old filed once, at 200
    index.adopt(0, [b"old", b"written"])  # again, from a later slice
    assert index.due(0, 240.0) == [b"written"]  # still at 150, not moved to 240
    assert index.due(0, 289.0) == []  # old still at 200 (not 240): due from 290
    assert index.due(0, 290.0) == [b"old"] and len(index) == 0


def _walked(value: Any) -> list[int]:
    """Sizes of the containers in ``value`` (and in their values) that the garbage
    collector tracks, so walks at each collection of their generation."""
    if not isinstance(value, dict | list):
        return []
    inner = value.values() if isinstance(value, dict) else value
    own = [len(value)] if gc.is_tracked(value) else []
    return own + [size for item in inner for size in _walked(item)]


def test_no_container_the_garbage_collector_walks_grows_with_the_keys() -> None:
    # A collection walks every tracked container whole: one that grows per key held the
    # event loop for hundreds of ms per full pass at a few hundred thousand keys.
    index = ExpiryIndex(idle_after=80.0)  # buckets of 10
    for i in range(10_000):
        index.touch(i % 4, f"k{i:05d}".encode(), float(i % 100))
    index.forget(0, b"k00000")
    assert len(index.due(1, 150.0, limit=10)) == 10
    gc.collect()
    index.touch(2, b"late", 120.0)  # a write after the last full collection
    assert len(index) == 10_000 - 1 - 10 + 1
    assert max(_walked(vars(index))) <= 16  # partitions and buckets, never keys


@pytest.mark.parametrize("idle_after", [0.0, -1.0, float("inf"), float("nan")])
def test_the_idle_period_is_checked(idle_after: float) -> None:
    with pytest.raises(ValueError, match="idle_after must be finite and > 0"):
        ExpiryIndex(idle_after)


def test_an_idle_period_under_a_second_is_allowed() -> None:
    index = ExpiryIndex(idle_after=0.5)
    index.touch(0, b"k", 0.0)
    assert index.due(0, 1.0) == [b"k"]


@pytest.mark.parametrize("limit", [0, -1])
def test_the_limit_is_checked(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        ExpiryIndex(80.0).due(0, 0.0, limit=limit)
    assert ExpiryIndex(80.0).due(0, 0.0, limit=1) == []
