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
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agents.follow import LatestByKey
from agents.support import json_table
from schemas.events import ServiceMetrics
from schemas.monitor import MONITOR_EVENT, BatchSummary, JoinedOutcome
from stream_app.app import StreamApp
from stream_app.monitoring.ab_schedule import ABScheduler, ABState, ABStep

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: StreamApp) -> None:
    """Declare the report agent, its table, the /reports/ab page and its follower."""
    settings, topics = app.settings, app.kafka_topics
    table = json_table(app, "ab-report")
    schedulers: dict[str, ABScheduler] = {}
    skipped: Counter[str] = Counter()
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
            model = done.model.encode()
            await topics.ab_reports.send(key=model, value=json.dumps(done.to_dict()).encode())
            metrics = ServiceMetrics(
                service=service,
                timestamp=datetime.fromtimestamp(done.interval_end, UTC),
                **done.guardrails(),
            )
            await topics.service_metrics.send(
                key=service.encode(), value=metrics.model_dump_json(exclude_none=True).encode()
            )

    @app.agent(topics.monitor_events, name="ab-report")
    async def ab_report(stream: Any) -> None:
        async for event in stream.events():
            try:
                monitored = MONITOR_EVENT.validate_json(bytes(event.value or b""))
            except ValidationError:
                skipped["undecodable"] += 1
                log.warning("ab-report: undecodable monitor event (%d so far)",
                            skipped["undecodable"])  # fmt: skip
                continue
            key = event.key or settings.model_name.encode()
            stored = table.get(key)
            state = ABState() if stored is None else ABState.from_dict(stored)
            rules = scheduler(key.decode("utf-8", "replace"))
            if isinstance(monitored, BatchSummary):
                step = rules.on_batch(state, monitored)
            elif isinstance(monitored, JoinedOutcome):
                step = rules.on_outcome(state, monitored)
            else:  # a RequestCounted: only its event time matters here
                step = rules.on_time(state, monitored.timestamp.timestamp())
            table[key] = step.state.to_dict()
            await publish(step)

    follower = LatestByKey(settings.bootstrap_servers, topics.ab_reports.get_topic_name())
    app.task(follower.run)  # every worker follows the whole topic

    @app.page("/reports/ab")
    async def ab_reports_page(web: Any, request: Any) -> Any:
        reports = {k.decode("utf-8", "replace"): json.loads(v) for k, v in follower.latest.items()}
        return web.json({"reports": reports, "messages_read": follower.read})
