"""What the monitoring agents share: JSON tables, replay guards, delivery, skip logging.

Every monitoring table holds ``{"offset": <source offset>, "state": <pure state dict>}``
per key. All events of one key come from one partition in offset order, so an event at
or below the stored offset was already applied: after a crash (at_least_once replays
everything since the last commit, while the changelog may already hold the new state)
it is skipped instead of being counted twice. Outputs are sent and acknowledged before
the state is written, so a crash in between repeats an output rather than losing it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import faust
from pydantic import ValidationError

from schemas.monitor import MONITOR_EVENT, BatchSummary, JoinedOutcome, RequestCounted
from stream_app.app import StreamApp

__all__ = ["SkipLog", "decode_monitor_event", "deliver", "json_table", "seen"]

_log = logging.getLogger(__name__)


def json_table(app: StreamApp, name: str) -> Any:
    """A table with raw-bytes keys and JSON values, co-partitioned with the sources.

    ``key_type=bytes`` matters: changelog recovery decodes keys with the serializer
    Faust derives from ``key_type`` (JSON when unset), not with ``schema``'s, so
    without it a restarted worker cannot read back the raw keys it wrote.
    """
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="json"),
        partitions=app.settings.partitions,
    )


def seen(stored: Mapping[str, Any] | None, offset: int) -> bool:
    """Whether the event at ``offset`` is already in the stored state (a replay).

    Example:
        >>> seen(None, 0), seen({"offset": 4, "state": {}}, 4), seen({"offset": 4}, 5)
        (False, True, False)
    """
    return stored is not None and offset <= int(stored["offset"])


async def deliver(topic: Any, key: bytes, value: bytes) -> None:
    """Send and wait for the broker's acknowledgement (see the module docstring)."""
    pending = await topic.send(key=key, value=value)
    await pending


class SkipLog:
    """Counts messages an agent skips, by reason, and logs each with the running count.

    Only the reason and an exception's type are logged, never the message: it may
    hold request data.
    """

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.counts: Counter[str] = Counter()

    def skip(self, reason: str, error: BaseException | None = None) -> None:
        self.counts[reason] += 1
        kind = "" if error is None else f" ({type(error).__name__})"
        _log.warning(
            "%s: skipped a message: %s%s [%d so far]",
            self.agent,
            reason,
            kind,
            self.counts[reason],
        )


def decode_monitor_event(
    raw: bytes | None, skips: SkipLog
) -> BatchSummary | RequestCounted | JoinedOutcome | None:
    """The monitor event in ``raw``, or None (logged and counted) when it is not one."""
    try:
        return MONITOR_EVENT.validate_json(raw or b"")
    except ValidationError as error:
        skips.skip("undecodable monitor event", error)
        return None
