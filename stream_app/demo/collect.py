"""Read the pipeline's outputs while the demo plays, fold them, and say when all is in.

:class:`OutputCollector` follows the output topics from their start (the topics are the
run's own) and feeds every message to a :class:`ReportBuilder`. :func:`drain_status`
compares the folded summary with the scenario's truth: every request accounted for and
the windows of the day's last hour closed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from stream_app.dashboard.history import Kind, ReportHistory
from stream_app.demo.outputs import sortable_time
from stream_app.demo.report import DemoSummary, ReportBuilder
from stream_app.demo.scenario import ScenarioTruth
from stream_app.topics import MAX_MESSAGE_BYTES

__all__ = ["OUTPUT_TOPICS", "REQUEST_OUTPUTS", "DrainStatus", "OutputCollector", "drain_status"]

# Topic attributes the report reads; the first three hold one message per request.
REQUEST_OUTPUTS = ("predictions", "requests_invalid", "requests_throttled")
OUTPUT_TOPICS = (*REQUEST_OUTPUTS, "drift_reports", "ab_reports", "alerts", "service_metrics")
# The report topics the HTML report draws, and their kind in a ReportHistory.
_DRAWN: dict[str, Kind] = {"ab_reports": "ab", "drift_reports": "drift", "alerts": "alerts"}


@dataclass(frozen=True)
class DrainStatus:
    """How far the outputs are: requests accounted for, and whether the last windows closed."""

    accounted: int
    expected: int
    drift_closed: bool
    ab_closed: bool

    @property
    def done(self) -> bool:
        return self.accounted >= self.expected and self.drift_closed and self.ab_closed

    def describe(self) -> str:
        """One line for the progress output."""
        closed = [name for name, ok in (("drift", self.drift_closed), ("A/B", self.ab_closed))
                  if ok]  # fmt: skip
        windows = ", ".join(closed) if closed else "none yet"
        out = f"{self.accounted:,} of {self.expected:,} requests out"
        return f"{out}; last windows closed: {windows}"


def _after(end: str | None, moment: datetime) -> bool:
    return end is not None and sortable_time(end) >= moment.isoformat()


def drain_status(summary: DemoSummary, truth: ScenarioTruth) -> DrainStatus:
    """Compare the outputs so far with what the day should give.

    Example:
        >>> from stream_app.demo.scenario import ScenarioConfig, build_scenario
        >>> truth = build_scenario(ScenarioConfig(n_requests=300, over_limit_clients=0)).truth
        >>> status = drain_status(ReportBuilder().summary(), truth)
        >>> status.accounted, status.expected, status.done
        (0, 300, False)
    """
    accounted = summary.predictions + summary.invalid_requests + summary.throttled
    return DrainStatus(
        accounted=accounted,
        expected=truth.requests,
        drift_closed=_after(summary.drift_last_end, truth.day_end),
        ab_closed=_after(summary.ab_window_end, truth.day_end),
    )


class OutputCollector:
    """Consume the output topics (``names``: attribute -> topic name) into a ReportBuilder,
    and the report topics also into a ReportHistory (for the HTML report's charts)."""

    def __init__(
        self,
        bootstrap: list[str],
        names: Mapping[str, str],
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.builder = ReportBuilder()
        self.history = ReportHistory()
        self.received: Counter[str] = Counter()
        self._attr = {names[attr]: attr for attr in OUTPUT_TOPICS}
        self._consumer = AIOKafkaConsumer(
            *self._attr,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=2 * MAX_MESSAGE_BYTES,
            metadata_max_age_ms=2000,  # the topics appear when the worker creates them
            **(security or {}),
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def request_outputs(self) -> int:
        """Messages on the request topics so far (a replay counts twice here)."""
        return sum(self.received[attr] for attr in REQUEST_OUTPUTS)

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    attr = self._attr[record.topic]
                    self.received[attr] += 1
                    self.builder.add(attr, record.key, record.value or b"")
                    if attr in _DRAWN:
                        self.history.add(_DRAWN[attr], record.value)

    async def wait_drained(
        self,
        truth: ScenarioTruth,
        *,
        timeout: float,
        report: Callable[[DrainStatus], None],
        idle_seconds: float = 2.0,
        every_seconds: float = 5.0,
    ) -> DrainStatus:
        """Wait until :func:`drain_status` is done and nothing new came for ``idle_seconds``
        (a replayed output would come now), or until ``timeout``; returns the last status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_total, last_change, last_report = -1, loop.time(), loop.time()
        status = drain_status(self.builder.summary(), truth)
        while loop.time() < deadline:
            total = sum(self.received.values())
            if total != last_total:
                last_total, last_change = total, loop.time()
                status = drain_status(self.builder.summary(), truth)
            if status.done and loop.time() - last_change >= idle_seconds:
                break
            if loop.time() - last_report >= every_seconds:
                report(status)
                last_report = loop.time()
            await asyncio.sleep(0.25)
        return status
