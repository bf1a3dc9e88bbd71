"""Incremental expiry: which keys to look at, without scanning a table.

:class:`ExpiryIndex` files each key under the time bucket (an eighth of ``idle_after``
wide) of its last write, per partition. :meth:`ExpiryIndex.due` hands out only the keys
of buckets that ended at least ``idle_after`` before ``now`` and forgets them, so the
cost of expiry is the number of keys that may have expired, never the size of the
table; with a ``limit`` at most that many per call (the rest wait for the next), so a
crowd of keys going idle together is expired a slice at a time. A key written again
moves to its new bucket. A key is handed out from ``idle_after`` to ``1.125 *
idle_after`` after its last write (of the clock ``now``), later only while more than
``limit`` keys are due.
"""

from __future__ import annotations

import itertools
import math

__all__ = ["ExpiryIndex"]


class ExpiryIndex:
    """Keys by partition and time bucket of their last write (see the module doc).

    Example:
        >>> index = ExpiryIndex(idle_after=80.0)  # buckets of 10
        >>> index.touch(0, b"a", 15.0); index.touch(0, b"b", 70.0); index.touch(1, b"c", 10.0)
        >>> index.due(0, 99.0)  # a's bucket [10, 20) ended 79 before
        []
        >>> index.due(0, 100.0)
        [b'a']
        >>> index.touch(1, b"c", 130.0)  # written again: filed anew
        >>> index.due(1, 150.0), len(index)
        ([], 2)
        >>> for key in (b"x", b"y", b"z"): index.touch(2, key, 5.0)
        >>> index.due(2, 100.0, limit=2), index.due(2, 100.0, limit=2)  # order of writing
        ([b'x', b'y'], [b'z'])
    """

    def __init__(self, idle_after: float) -> None:
        if not (math.isfinite(idle_after) and idle_after > 0):
            raise ValueError(f"idle_after must be finite and > 0, got {idle_after!r}")
        self.idle_after = idle_after
        self.width = idle_after / 8
        # Keys of a bucket in the order they were filed (a dict as an ordered set), and
        # each key's bucket, by partition. Nothing per key is a container the garbage
        # collector walks: a dict of bytes keys and None or int values is not tracked.
        # A dict keyed by (partition, key) tuples was, and each write tracked it again, so
        # every collection walked all its keys (bench_state: full passes of 200-360 ms
        # every 2 s at 200,000 join entries).
        self._buckets: dict[int, dict[int, dict[bytes, None]]] = {}
        self._filed: dict[int, dict[bytes, int]] = {}
        # Keys found in a table without a write this index saw, by partition: filed at
        # that partition's clock by its next call to due().
        self._adopted: dict[int, list[bytes]] = {}

    def __len__(self) -> int:
        return sum(map(len, self._filed.values()))

    def touch(self, partition: int, key: bytes, now: float) -> None:
        """``key`` of ``partition`` was written at ``now``."""
        bucket = math.floor(now / self.width)
        filed = self._filed.setdefault(partition, {})
        old = filed.get(key)
        if old == bucket:
            return
        buckets = self._buckets.setdefault(partition, {})
        if old is not None:
            buckets[old].pop(key, None)
            if not buckets[old]:
                del buckets[old]
        buckets.setdefault(bucket, {})[key] = None
        filed[key] = bucket

    def forget(self, partition: int, key: bytes) -> None:
        """Stop tracking ``key`` (it was deleted)."""
        bucket = self._filed.get(partition, {}).pop(key, None)
        if bucket is not None:
            keys = self._buckets[partition][bucket]
            keys.pop(key, None)
            if not keys:
                del self._buckets[partition][bucket]

    def adopt(self, partition: int, keys: list[bytes]) -> None:
        """Track ``keys`` of ``partition`` that this index never saw written (rows read
        back from a changelog at a start, or found in a store's database): the next
        :meth:`due` of the partition files them at its ``now``, so they are looked at
        one ``idle_after`` later. A key filed by then (written since, or adopted twice)
        keeps the bucket it has.

        Example:
            >>> index = ExpiryIndex(idle_after=80.0)
            >>> index.adopt(0, [b"old"])
            >>> index.due(0, 500.0), index.due(0, 589.0), index.due(0, 590.0)
            ([], [], [b'old'])
        """
        self._adopted.setdefault(partition, []).extend(keys)

    def due(self, partition: int, now: float, limit: int | None = None) -> list[bytes]:
        """Keys of ``partition`` not written since a bucket that ended ``idle_after``
        before ``now``, oldest bucket first and in the order they were filed, at most
        ``limit`` of them; they are no longer tracked."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        for key in self._adopted.pop(partition, ()):
            if key not in self._filed.get(partition, {}):  # written since: filed already
                self.touch(partition, key, now)
        buckets = self._buckets.get(partition, {})
        filed = self._filed.get(partition, {})
        # Bucket b ends at (b + 1) * width; it is due when that is <= now - idle_after.
        last = math.floor((now - self.idle_after) / self.width)
        out: list[bytes] = []
        for bucket in sorted(b for b in buckets if b < last):
            keys = buckets[bucket]
            room = None if limit is None else limit - len(out)
            taken = list(itertools.islice(keys, room))
            for key in taken:
                del keys[key]
                del filed[key]
            out.extend(taken)
            if keys:
                break  # the limit is reached
            del buckets[bucket]
        return out
