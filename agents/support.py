"""What the monitoring agents share: reading a monitor event into a keyed fold event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agents.driver import Keyed, Message, SkipLog, origin_of
from schemas.monitor import (
    MONITOR_EVENT,
    BatchSummary,
    JoinedOutcome,
    RequestCounted,
    SilenceTick,
)

__all__ = ["MonitorEvent", "decode_monitor_event", "monitor_route"]

MonitorEvent = BatchSummary | RequestCounted | JoinedOutcome | SilenceTick


def decode_monitor_event(raw: bytes | None, skips: SkipLog) -> MonitorEvent | None:
    """The monitor event in ``raw``, or None (logged and counted) when it is not one."""
    try:
        return MONITOR_EVENT.validate_json(raw or b"")
    except ValidationError as error:
        skips.skip("undecodable monitor event", error)
        return None


def monitor_route(
    skips: SkipLog, kinds: tuple[type, ...]
) -> Callable[[Any], Keyed[MonitorEvent] | tuple[Message, ...]]:
    """A route for monitor-events: the model-name key and the event, if of ``kinds``.

    Events of other kinds are other agents' business and are passed over silently;
    undecodable or key-less ones are counted and logged (they are internal, so a
    foreign writer, never a client, produced them).
    """

    def route(record: Any) -> Keyed[MonitorEvent] | tuple[Message, ...]:
        if record.key is None:
            skips.skip("monitor event without a key")
            return ()
        event = decode_monitor_event(record.value, skips)
        if event is None or not isinstance(event, kinds):
            return ()
        where, offset = origin_of(record)
        return Keyed(bytes(record.key), event, where, offset)

    return route
