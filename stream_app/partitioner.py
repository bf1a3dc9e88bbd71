"""Which partition Kafka's default partitioner gives a key (murmur2, as Java and aiokafka).

The outcome join needs it to tell whether an outcome sits on the partition of its
request_id; the domain code may not import aiokafka, so the hash is written out here
from Kafka's definition (``Utils.murmur2`` with seed 0x9747b28c, ``toPositive`` then
modulo the partition count).
"""

from __future__ import annotations

from typing import Final

__all__ = ["default_partition", "murmur2"]

_MASK: Final = 0xFFFFFFFF
_M: Final = 0x5BD1E995
_SEED: Final = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as a signed int like Java's.

    Example:
        >>> murmur2(b"21"), murmur2(b"foobar")
        (-973932308, -790332482)
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    # The tail bytes fold in from the last one down, as Java's switch falls through.
    for shift, byte in reversed(list(enumerate(tail))):
        h ^= byte << (8 * shift)
    if tail:
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def default_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` under Kafka's default partitioner.

    Example:
        >>> default_partition(b"r-1", 1), default_partition(b"foobar", 4)
        (0, 2)
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
