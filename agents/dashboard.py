"""/dashboard (and /): this worker's traffic and model, and the reports it follows, as one
HTML page of charts that refreshes itself.

The traffic is the worker's own: every ``STREAM_DASHBOARD_INTERVAL_SECONDS`` a timer takes
the interval's counts (``app.traffic``, fed by intake and scoring) into a ring of
:data:`~stream_app.dashboard.traffic.RING_SIZE` points, with the consumer lag on the
request partitions it reads. The model panel is the registry follower's view and the
bundles this worker refused. A/B, drift and alerts come from a follower of ab-reports,
drift-reports and alerts (``agents/follow.py``), at most ``KEEP`` messages of each.
The page is drawn in a thread (matplotlib takes a while) at most once per interval;
requests in between get the page drawn last.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from agents.follow import TopicFollower
from stream_app.app import StreamApp
from stream_app.dashboard.history import Kind, ReportHistory
from stream_app.dashboard.page import DashboardInputs, render_page
from stream_app.dashboard.traffic import RING_SIZE, TrafficRing

__all__ = ["consumer_lag", "install"]

_REFUSALS_KEPT = 50


def consumer_lag(app: StreamApp, topic: str) -> int | None:
    """Messages behind on ``topic``'s partitions this worker has read from since they were
    assigned; None when it has read from none yet (or the consumer cannot say)."""
    consumer = app.consumer
    # The read positions are not part of Faust's declared interface.
    read = getattr(consumer, "_read_offset", None)
    if read is None:
        return None
    lags = []
    try:
        for tp in consumer.assignment():
            # A partition with nothing read since its assignment has no known position.
            done = read.get(tp) if tp.topic == topic else None
            if done is None:
                continue
            high = consumer.highwater(tp)
            if high is not None:
                lags.append(max(0, int(high) - (int(done) + 1)))
    except (AttributeError, KeyError, TypeError, RuntimeError):
        return None
    return sum(lags) if lags else None


class _Dashboard:
    """The worker's dashboard state: the traffic ring, the refusals, the followed reports
    and the page drawn last."""

    def __init__(self, app: StreamApp) -> None:
        self.app = app
        topics = app.kafka_topics
        self.kinds: dict[str, Kind] = {
            topics.ab_reports.get_topic_name(): "ab",
            topics.drift_reports.get_topic_name(): "drift",
            topics.alerts.get_topic_name(): "alerts",
        }
        self.requests_topic = topics.prediction_requests.get_topic_name()
        self.ring = TrafficRing(RING_SIZE)
        self.history = ReportHistory()
        self.refused: deque[dict[str, Any]] = deque(maxlen=_REFUSALS_KEPT)
        self.follower = TopicFollower(
            app.settings.bootstrap_servers, list(self.kinds), app.settings.partitions,
            self.apply, security=app.kafka_security,
        )  # fmt: skip
        self.page: tuple[float, str] | None = None
        self.drawing = asyncio.Lock()

    def apply(self, record: Any) -> None:
        self.history.add(self.kinds[record.topic], record.value)

    def tick(self) -> None:
        """Close the traffic interval; note a bundle refused since the last tick."""
        self.ring.add(
            self.app.traffic.take(time.time(), consumer_lag(self.app, self.requests_topic))
        )
        refused = self.app.serving.refused
        if refused is not None:
            note = {"version": refused.version, "at": refused.at.isoformat()}
            if note not in self.refused:
                self.refused.append(note)

    def inputs(self) -> DashboardInputs:
        """A copy of everything the page shows, taken on the event loop."""
        report = self.app.registry_report
        interval = self.app.settings.dashboard_interval_seconds
        notes = [f"Traffic: this worker's last {RING_SIZE} intervals of {interval:g} s."]
        if not self.follower.caught_up:
            notes.append("Still reading the report topics: the panels may be behind.")
        return DashboardInputs(
            traffic=tuple(self.ring), registry=None if report is None else report(),
            refused=tuple(self.refused), ab=self.history.messages("ab"),
            drift=self.history.messages("drift"), alerts=self.history.messages("alerts"),
            notes=tuple(notes),
        )  # fmt: skip

    async def html(self) -> str:
        """The page, drawn again when the last one is older than an interval."""
        interval = self.app.settings.dashboard_interval_seconds
        async with self.drawing:
            if self.page is None or time.monotonic() - self.page[0] >= interval:
                text = await asyncio.to_thread(
                    render_page, self.inputs(), title=f"stream-app: {self.app.settings.app_id}",
                    now=datetime.now(UTC), refresh_seconds=interval,
                )  # fmt: skip
                self.page = (time.monotonic(), text)
            return self.page[1]


def install(app: StreamApp) -> None:
    """Add the dashboard's follower, its traffic timer and the /dashboard, / and
    /dashboard/traffic pages."""
    board = _Dashboard(app)
    app.task(board.follower.run)

    async def tick() -> None:
        board.tick()

    app.timer(app.settings.dashboard_interval_seconds)(tick)

    @app.page("/dashboard")
    async def dashboard_page(web: Any, request: Any) -> Any:
        return web.html(await board.html())

    @app.page("/")
    async def index_page(web: Any, request: Any) -> Any:
        return web.html(await board.html())

    @app.page("/dashboard/traffic")
    async def traffic_page(web: Any, request: Any) -> Any:
        return web.json({
            "interval_seconds": app.settings.dashboard_interval_seconds,
            "ring_size": RING_SIZE,
            "points": [p.to_dict() for p in board.ring],
        })  # fmt: skip
