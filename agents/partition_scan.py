"""The keys a ``rocksdb://`` table held on disk when this worker took a partition, a slice
at a time.

A restart on a data directory reads only the changelog's tail, so the rows persisted
before it are never read back and the expiry index would never hear of them: a client
that never came back would keep its row for good. :class:`PartitionScan` walks each
partition database this worker takes (a start, a rebalance) with a cursor of its own and
hands out at most ``limit`` keys per call, so the walk rides along with the batches
instead of holding the event loop for a whole table. Each call opens a new iterator at
the cursor: no iterator (and so no RocksDB snapshot) is held between batches, and a key
deleted since is not handed out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import cast

from rocksdict import Rdict

__all__ = ["KEYS_PER_CALL", "PartitionScan"]

# Keys a table store hands to the expiry index per batch at most (``TableStore.recovered``).
# Reading 2,048 keys from RocksDB takes about 1 ms and filing them in the index about
# 3 ms, a tenth of what a batch of 256 takes (20-40 ms), so a batch waits little for them;
# a million persisted rows are adopted over some 500 batches.
KEYS_PER_CALL = 2048


class PartitionScan:
    """Cursors over partition databases: every key of a partition taken here is handed
    out once, in the database's order, ``limit`` keys per :meth:`take` at most.

    ``skip`` is a key that is no row (Faust's ``offset_key``).

    Example:
        >>> import tempfile
        >>> from rocksdict import Options
        >>> where = tempfile.TemporaryDirectory()
        >>> db = Rdict(where.name + "/p0", Options(raw_mode=True))
        >>> for key in (b"a", b"b", b"c", b"offset"): db.put(key, b"row")
        >>> scan = PartitionScan(skip=b"offset")
        >>> scan.assign({0})
        >>> scan.take(lambda partition: db, 2), scan.take(lambda partition: db, 2)
        ([(0, b'a'), (0, b'b')], [(0, b'c')])
        >>> scan.take(lambda partition: db, 2), scan.scanning
        ([], set())
        >>> db.close(); where.cleanup()
    """

    def __init__(self, skip: bytes) -> None:
        self.skip = skip
        self._owned: set[int] = set()
        # partition -> the last key handed out (None: none yet); a finished scan has none.
        self._cursors: dict[int, bytes | None] = {}

    @property
    def owned(self) -> set[int]:
        """The partitions of the last :meth:`assign`."""
        return set(self._owned)

    @property
    def scanning(self) -> set[int]:
        """Partitions whose keys are not all handed out yet."""
        return set(self._cursors)

    def assign(self, partitions: Iterable[int]) -> None:
        """This worker now owns ``partitions``: one it did not own before is scanned from
        its first key, one it no longer owns stops, one it kept goes on as it was."""
        owned = set(partitions)
        for partition in self._owned - owned:
            self._cursors.pop(partition, None)
        for partition in owned - self._owned:
            self._cursors[partition] = None
        self._owned = owned

    def take(self, db_for: Callable[[int], Rdict], limit: int) -> list[tuple[int, bytes]]:
        """The next ``(partition, key)`` pairs, at most ``limit``, partition by partition;
        ``db_for`` gives a partition's database (opened in raw mode: keys are bytes)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        out: list[tuple[int, bytes]] = []
        for partition in list(self._cursors):
            room = limit - len(out)
            if room == 0:
                break
            keys = self._next(db_for(partition), self._cursors[partition], room)
            if len(keys) < room:  # the end of the database
                del self._cursors[partition]
            else:
                self._cursors[partition] = keys[-1]
            out.extend((partition, key) for key in keys)
        return out

    def _next(self, db: Rdict, after: bytes | None, n: int) -> list[bytes]:
        """Up to ``n`` keys of ``db`` past ``after`` (from the first when None), less
        ``skip``."""
        found = cast(Iterable[bytes], db.keys(from_key=after))  # raw mode: keys are bytes
        keys = list(itertools.islice((key for key in found if key != self.skip), n + 1))
        if after is not None and keys and keys[0] == after:
            del keys[0]
        return keys[:n]
