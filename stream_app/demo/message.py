"""One message of the demo scenario: which topic, key and value bytes, at which event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np

__all__ = ["EPOCH", "ScenarioMessage", "iso_ms", "iso_ms_many"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: the form the demo writes into JSON.

    Example:
        >>> iso_ms(datetime(2026, 1, 1, 9, 30, 0, 250_000, tzinfo=UTC))
        '2026-01-01T09:30:00.250Z'
    """
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; pass an aware one")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms_many(epoch_ms: np.ndarray) -> list[str]:
    """:func:`iso_ms` of many epoch-millisecond times at once (numpy, no datetime objects).

    Example:
        >>> iso_ms_many(np.array([0, 1_767_261_000_250]))
        ['1970-01-01T00:00:00.000Z', '2026-01-01T09:50:00.250Z']
    """
    stamps = np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]")
    return [text + "Z" for text in np.datetime_as_string(stamps, unit="ms").tolist()]


class ScenarioMessage(NamedTuple):
    """A message to produce: ``topic`` is an attribute of ``stream_app.topics.Topics``.

    A named tuple rather than a frozen dataclass: a day has some 60,000 of them, and a
    tuple is built several times faster.

    ``timestamp_ms`` is the event time in epoch milliseconds; a player sets it as the
    Kafka timestamp too, so a request without a ``timestamp`` field has its event time.

    Example:
        >>> m = ScenarioMessage("outcomes", b"r1", b"{}", 1_767_225_600_000)
        >>> m.timestamp.isoformat()
        '2026-01-01T00:00:00+00:00'
    """

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int

    @property
    def timestamp(self) -> datetime:
        """The event time as an aware UTC datetime."""
        return EPOCH + timedelta(milliseconds=self.timestamp_ms)
