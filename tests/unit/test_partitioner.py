"""Kafka's default partitioner, written out: same answers as Java's and aiokafka's."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.partitioner import KeyPartitioner, default_partition, murmur2


# Kafka's UtilsTest.testMurmur2 vectors (Java's signed ints).
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_same_partition_as_aiokafka(key: bytes, partitions: int) -> None:
    assert murmur2(key) & 0xFFFFFFFF == aiokafka_murmur2(key)
    every = list(range(partitions))
    assert default_partition(key, partitions) == DefaultPartitioner()(key, every, every)
    # The producer's: the same partition (asked twice: the second answer is the cached hash's).
    ours = KeyPartitioner()
    assert (
        ours(key, every, every) == ours(key, every, every[:1]) == default_partition(key, partitions)
    )


def test_the_producer_spreads_keyless_messages_over_available_partitions() -> None:
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2, 3], [2]) for _ in range(50)} == {2}
    assert {ours(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}


def test_partition_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        default_partition(b"k", 0)
