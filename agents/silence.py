"""Silence ticks: the worker's clock on monitor-events, so a silent input's windows close.

Every ``STREAM_SILENCE_TICK_SECONDS`` the worker that owns the model's partition of
monitor-events sends a :class:`~schemas.monitor.SilenceTick` there, keyed by the model
name. The tick goes through the batch driver like any monitor event: the drift and
service-metrics folds read its record time (this worker's clock when it was sent) and
close the windows of a silence (``stream_app/monitoring/silence.py``). Sent as a
record, not folded by a timer beside the driver, the tick keeps the driver's order and
guarantees: its outputs and its row go in the transaction that commits its offset under
exactly_once (a partition with no new offset never commits its open transaction, so
outputs folded beside the stream would stay invisible to read_committed readers until
traffic came back), and a replay after a crash folds it at the same time again.
"""

from __future__ import annotations

import asyncio
import logging

from faust.types import TP

from schemas.codec import encode
from schemas.monitor import SilenceTick
from stream_app.app import StreamApp
from stream_app.partitioner import default_partition

__all__ = ["install"]

log = logging.getLogger(__name__)

_ACK_TIMEOUT = 30.0


def install(app: StreamApp) -> None:
    """Add the tick timer (none when ``STREAM_SILENCE_TICK_SECONDS`` is 0)."""
    settings = app.settings
    if settings.silence_tick_seconds <= 0:
        return
    topic = app.kafka_topics.monitor_events.get_topic_name()
    key = settings.model_name.encode()
    owned = TP(topic, default_partition(key, settings.partitions))
    value = encode(SilenceTick())

    async def tick() -> None:
        # One sender: the worker whose driver folds the key (a second during a
        # rebalance does no harm: a tick only says what time it is).
        if app.should_stop or owned not in app.assignor.assigned_actives():
            return
        try:
            pending = await app.producer.send(topic, key, value, None, None, None)
            await asyncio.wait_for(pending, _ACK_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - the next tick tries again
            log.warning("silence tick not sent (%s); the next one tries again",
                        type(error).__name__)  # fmt: skip

    app.timer(settings.silence_tick_seconds)(tick)
