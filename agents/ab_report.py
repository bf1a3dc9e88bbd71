"""A/B reports: monitor-events -> per-variant counters -> ab-reports and guardrail metrics.

The table is keyed by model name (the key of monitor-events, so one partition holds a
model's whole stream). The rules (intervals of event time, experiments, late events)
are in stream_app.monitoring.ab_schedule. Each closed interval gives one report on
ab-reports and one ServiceMetrics ``<app_id>.ab`` (ab_srm, ab_latency_increase) on
service-metrics for the alert agent. /reports/ab serves the newest report per model
from a local follower of ab-reports (agents/follow.py says why).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from agents.follow import LatestByKey
from agents.support import SkipLog, decode_monitor_event, deliver, json_table, seen
from schemas.events import ServiceMetrics
from schemas.monitor import BatchSummary, JoinedOutcome
from stream_app.app import StreamApp
from stream_app.monitoring.ab_schedule import ABScheduler, ABState, ABStep

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: StreamApp) -> None:
    """Declare the report agent, its table, the /reports/ab page and its follower."""
    settings, topics = app.settings, app.kafka_topics
    table = json_table(app, "ab-report")
    schedulers: dict[str, ABScheduler] = {}
    skips = SkipLog("ab-report")
    service = f"{settings.app_id}.ab"

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

    async def publish(step: ABStep) -> None:
        for done in step.reports:
            report = json.dumps(done.to_dict()).encode()
            await deliver(topics.ab_reports, done.model.encode(), report)
            metrics = ServiceMetrics(
                service=service,
                timestamp=datetime.fromtimestamp(done.interval_end, UTC),
                **done.guardrails(),
            )
            value = metrics.model_dump_json(exclude_none=True).encode()
            await deliver(topics.service_metrics, service.encode(), value)

    @app.agent(topics.monitor_events, name="ab-report")
    async def ab_report(stream: Any) -> None:
        async for event in stream.events():
            monitored = decode_monitor_event(event.value, skips)
            key, offset = event.key or settings.model_name.encode(), event.message.offset
            stored = table.get(key)
            if monitored is None or seen(stored, offset):
                continue  # undecodable (logged), or a replay of an event already applied
            state = ABState() if stored is None else ABState.from_dict(stored["state"])
            rules = scheduler(key.decode("utf-8", "replace"))
            try:
                if isinstance(monitored, BatchSummary):
                    step = rules.on_batch(state, monitored)
                elif isinstance(monitored, JoinedOutcome):
                    step = rules.on_outcome(state, monitored)
                else:  # a RequestCounted: only its event time matters here
                    step = rules.on_time(state, monitored.timestamp.timestamp())
            except (ValueError, KeyError, TypeError, ArithmeticError) as error:
                skips.skip("monitor event the A/B counters cannot take", error)
                continue
            # Published and acknowledged first, then the state with the offset: a crash in
            # between replays the event and publishes again, never loses a report.
            await publish(step)
            table[key] = {"offset": offset, "state": step.state.to_dict()}

    follower = LatestByKey(
        settings.bootstrap_servers, topics.ab_reports.get_topic_name(), settings.partitions
    )
    app.task(follower.run)  # every worker follows the whole topic

    @app.page("/reports/ab")
    async def ab_reports_page(web: Any, request: Any) -> Any:
        reports = {k.decode("utf-8", "replace"): json.loads(v) for k, v in follower.latest.items()}
        return web.json({"reports": reports, "messages_read": follower.read})
