"""Which partition Kafka's default partitioner gives a key (murmur2, as Java and aiokafka).

The outcome join needs it to tell whether an outcome sits on the partition of its
request_id; the domain code may not import aiokafka, so the hash is written out here
from Kafka's definition (``Utils.murmur2`` with seed 0x9747b28c, ``toPositive`` then
modulo the partition count).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Final

__all__ = ["KeyPartitioner", "default_partition", "murmur2"]

_MASK: Final = 0xFFFFFFFF
_M: Final = 0x5BD1E995
_SEED: Final = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as a signed int like Java's.

    Example:
        >>> murmur2(b"21"), murmur2(b"foobar"), murmur2(b"")
        (-973932308, -790332482, 275646681)
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length >> 2
    for k in _words(whole)(data):  # little-endian 32-bit words, read in one call
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:  # the tail folds in from its last byte down, as Java's switch falls through
        at = whole * 4
        if rest == 3:
            h ^= data[at + 2] << 16
        if rest >= 2:
            h ^= data[at + 1] << 8
        h = ((h ^ data[at]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


@lru_cache(maxsize=256)
def _words(n: int) -> Callable[[bytes], tuple[int, ...]]:
    unpack = struct.Struct(f"<{n}I").unpack_from
    return lambda data: unpack(data)


# A key's hash is kept for the next 8,192 distinct keys (under 1 MB): a request's
# prediction, log and exposure share their request_id key, and a client's requests
# their client_id, so most keys are hashed once, not once per message.
@lru_cache(maxsize=8192)
def _positive(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def default_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` under Kafka's default partitioner.

    Example:
        >>> default_partition(b"r-1", 1), default_partition(b"foobar", 4)
        (0, 2)
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return _positive(key) % partitions


class KeyPartitioner:
    """The producer's partitioner (Faust's ``producer_partitioner``): Kafka's default
    partitioner, with each key's hash from :func:`default_partition`'s cache (the
    client's own is pure Python, one hash per message).

    Example:
        >>> KeyPartitioner()(b"foobar", [0, 1, 2, 3], [0, 1, 2, 3])
        2
    """

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:  # as the client: any partition, an available one if there is one
            return random.choice(available or all_partitions)  # noqa: S311 - not a secret
        return all_partitions[_positive(key) % len(all_partitions)]
