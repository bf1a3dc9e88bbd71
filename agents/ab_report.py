"""A/B reports: monitor-events -> per-variant counters -> ab-reports and guardrail metrics.

The table is keyed by model name (the key of monitor-events, so one partition holds a
model's whole stream). The rules (intervals of event time, experiments, late events)
are in stream_app.monitoring.ab_schedule, whose ``ABScheduler.fold`` the batch driver
runs. Each closed interval gives one report on ab-reports and one ServiceMetrics
``<app_id>.ab`` (ab_srm, ab_latency_increase) on service-metrics for the alert agent.
/reports/ab serves the newest report per model from a local follower of ab-reports
(agents/follow.py says why).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agents.driver import Keyed, Message, SkipLog, StatefulStep
from agents.faust_step import install_step
from agents.follow import LatestByKey
from agents.support import MonitorEvent, monitor_route
from schemas.codec import encode
from schemas.metrics import AppServiceMetrics
from schemas.monitor import BatchSummary, JoinedOutcome, RequestCounted, SilenceTick
from stream_app.app import StreamApp
from stream_app.fold import Folded
from stream_app.monitoring.ab_schedule import ABScheduler, ABState, IntervalReport

__all__ = ["install"]


def install(app: StreamApp) -> None:
    """Declare the report agent, its table, the /reports/ab page and its follower."""
    settings, topics = app.settings, app.kafka_topics
    schedulers: dict[str, ABScheduler] = {}
    skips = SkipLog("ab-report")
    service = f"{settings.app_id}.ab"
    reports_topic = topics.ab_reports.get_topic_name()
    metrics_topic = topics.service_metrics.get_topic_name()
    monitor = monitor_route(skips, (BatchSummary, JoinedOutcome, RequestCounted))

    def scheduler(model: str) -> ABScheduler:
        if model not in schedulers:
            schedulers[model] = ABScheduler(
                model=model,
                experiment=settings.ab_experiment,
                interval_seconds=settings.ab_report_interval_seconds,
                grace_seconds=settings.window_grace_seconds,
                expected_b_share=settings.ab_b_share,
                max_latency_increase=settings.ab_max_latency_increase,
            )
        return schedulers[model]

    def route(record: Any) -> Keyed[tuple[str, MonitorEvent]] | Sequence[Message]:
        routed = monitor(record)
        if not isinstance(routed, Keyed):
            return routed
        model = routed.key.decode("utf-8", "replace")
        return Keyed(routed.key, (model, routed.event), routed.origin, routed.offset)

    def fold(
        state: ABState | None, events: Sequence[tuple[str, MonitorEvent]], now: float
    ) -> Folded[ABState, IntervalReport]:
        # Every event of one key names the same model: the key is the model name. The
        # route passes no silence tick (A/B intervals do not close on silence).
        picked = [event for _, event in events if not isinstance(event, SilenceTick)]
        return scheduler(events[0][0]).fold(state, picked, now)

    async def emit(done: Sequence[IntervalReport]) -> list[list[Message]]:
        out = []
        for report in done:
            metrics = AppServiceMetrics(
                service=service,
                timestamp=datetime.fromtimestamp(report.interval_end, UTC),
                **report.guardrails(),
            )
            out.append([
                Message(reports_topic, report.model.encode(), encode(report.to_message())),
                Message(metrics_topic, service.encode(), encode(metrics)),
            ])  # fmt: skip
        return out

    step = StatefulStep(
        name="ab-report", table="ab-report", route=route, fold=fold,
        load=ABState.from_dict, dump=ABState.to_dict, emit=emit, skips=skips,
    )  # fmt: skip
    install_step(app, step, [topics.monitor_events.get_topic_name()])

    follower = LatestByKey(
        settings.bootstrap_servers, topics.ab_reports.get_topic_name(), settings.partitions,
        max_keys=settings.page_max_keys,
        security=app.kafka_security,
    )  # fmt: skip
    app.task(follower.run)  # every worker follows the whole topic

    @app.page("/reports/ab")
    async def ab_reports_page(web: Any, request: Any) -> Any:
        reports = {k.decode("utf-8", "replace"): json.loads(v) for k, v in follower.latest.items()}
        return web.json({"reports": reports, "messages_read": follower.read})
