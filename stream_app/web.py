"""The worker's HTTP pages: /livez (the event loop answers), /health and /readyz (JSON),
and /metrics (Prometheus, stream_app/metrics_page.py).

/health: the app, Kafka, the model and the agents are critical (any down: unhealthy, 503;
an agent is down while its batches fail, see stream_app.faults); a
refused model update is not (degraded, 200): the model before it still serves; nor is a
registry record refused for its signature, a served bundle with warnings (unsigned,
another scikit-learn), or an input topic whose producers choose its Kafka timestamps
(CreateTime; degraded, with the command that fixes it).
/readyz: 200 only with partitions assigned, tables recovered, a verified model and no
agent failing.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from stream_app.kafka_admin import metadata_brokers
from stream_app.metrics_page import register_metrics_page
from stream_app.monitoring.health import evaluate_health, evaluate_readiness

if TYPE_CHECKING:
    from stream_app.app import StreamApp

__all__ = [
    "BROKER_PROBE_SECONDS",
    "health_report",
    "probe_brokers",
    "readiness_report",
    "register_views",
]

_KAFKA_TIMEOUT = 2.0
BROKER_PROBE_SECONDS = 5.0


async def health_report(app: StreamApp) -> tuple[int, dict[str, Any]]:
    """HTTP status and report: 200 when the app runs, the broker answers and a verified
    model serves (degraded, still 200, after a refused model update), else 503.

    Kafka's answer is the worker's own probe (a metadata round trip every
    ``BROKER_PROBE_SECONDS``), so a call opens no connection; a probe older than three
    intervals (or none yet) is made afresh.
    """
    running = app.running
    brokers, age = await _brokers(app)
    assigned = Counter(tp.topic for tp in app.consumer.assignment()) if running else Counter()
    model = app.serving.status()
    update = _model_update(app)
    verdict = evaluate_health(
        {
            "app": {"up": running},
            "kafka": {"connected": brokers > 0},
            "model": {"loaded": model["loaded"], "error": model.get("error")},
            "model_update": update,
            "registry": _registry(app),
            "bundle": _bundle(app),
            "clocks": _clocks(app),
            "agents": _agents(app),
        },
        critical=("app", "kafka", "model", "agents"),
    )
    report = {
        "status": verdict.status,
        "app": {
            "id": app.conf.id,
            "running": running,
            "rebalancing": bool(app.rebalancing),
            "recovered": _recovered(app),
            # Read from changelogs since the start: recovery's replay, and standbys'.
            "changelog_records_read": dict(sorted(app.changelog_reads.items())),
        },
        "kafka": {
            "reachable": brokers > 0,
            "brokers": brokers,
            "checked_seconds_ago": round(age, 1),
            "assigned_partitions": dict(sorted(assigned.items())),
        },
        "model": model,
        "model_update": update,
        "registry": _registry(app),
        "bundle": _bundle(app),
        "clocks": _clocks(app),
        "agents": _agents(app),
        "failures": {
            "critical": list(verdict.critical_failures),
            "non_critical": list(verdict.non_critical_failures),
        },
    }
    return verdict.http_status, report


async def probe_brokers(app: StreamApp) -> None:
    """Ask Kafka how many brokers answer; /health reports the latest answer."""
    brokers = await metadata_brokers(
        app.settings.bootstrap_servers, timeout=_KAFKA_TIMEOUT, security=app.kafka_security
    )
    app.broker_probe = (brokers, time.monotonic())


async def _brokers(app: StreamApp) -> tuple[int, float]:
    """(brokers that answered, seconds since asked), from the probe unless it is stale."""
    probe = app.broker_probe
    if probe is None or time.monotonic() - probe[1] > 3 * BROKER_PROBE_SECONDS:
        await probe_brokers(app)
        probe = app.broker_probe
    assert probe is not None  # noqa: S101 - probe_brokers just set it
    return probe[0], time.monotonic() - probe[1]


def readiness_report(app: StreamApp) -> tuple[int, dict[str, Any]]:
    """HTTP status (200 or 503) and the /readyz body with the reasons when not ready."""
    running = app.running
    # Partitions and tables count only once a rebalance is over: until then the assignment
    # and the "recovered" flag can still be the previous generation's.
    settled = running and not app.rebalancing
    assigned = settled and bool(app.consumer.assignment())
    recovered = settled and _recovered(app)
    readiness = evaluate_readiness(
        assigned,
        recovered,
        app.serving.current is not None,
        failing=[fault.describe() for fault in app.faults.down.values()],
    )
    return readiness.http_status, readiness.to_dict()


def _model_update(app: StreamApp) -> dict[str, Any]:
    refused = app.serving.refused
    if refused is None:
        return {"up": True}
    return {
        "up": False,
        "version": refused.version,
        "at": refused.at.isoformat(),
        "error": f"version {refused.version} refused, the previous model keeps serving: "
        f"{refused.reason}",
    }


def _registry(app: StreamApp) -> dict[str, Any]:
    """Registry records refused for their signatures (the follower's own report)."""
    return {"up": True} if app.registry_health is None else app.registry_health()


def _bundle(app: StreamApp) -> dict[str, Any]:
    """The served bundles' warnings, by version: degraded while there are any."""
    warned = app.serving.bundle_warnings
    if not warned:
        return {"up": True}
    return {
        "up": False,
        "warnings": {version: list(notes) for version, notes in sorted(warned.items())},
        "error": "; ".join(f"{v}: {n}" for v, notes in sorted(warned.items()) for n in notes),
    }


def _agents(app: StreamApp) -> dict[str, Any]:
    """Whether every agent's last batch completed; failures counted since the start."""
    report: dict[str, Any] = {
        "up": not app.faults.down,
        "failed_batches": dict(sorted(app.faults.counts.items())),
    }
    if app.faults.down:
        report["error"] = "; ".join(f.describe() for f in app.faults.down.values())
    return report


def _clocks(app: StreamApp) -> dict[str, Any]:
    """Whether every input topic's Kafka timestamps are the broker's (LogAppendTime)."""
    drift = app.clock_drift
    if not drift:
        return {"up": True}
    topics = ", ".join(d.topic for d in drift)
    return {
        "up": False,
        "create_time_topics": [d.topic for d in drift],
        "fix": [d.fix("<bootstrap>") for d in drift],
        "error": f"producers choose the Kafka timestamps of {topics}: the rate limit and "
        "the event-time checks trust them",
    }


def _recovered(app: StreamApp) -> bool:
    # TableManager's recovery service is not part of Faust's declared interface.
    recovery = getattr(app.tables, "recovery", None)
    return bool(recovery is not None and recovery.completed.is_set())


def register_views(app: StreamApp) -> None:
    """Add /livez, /health, /readyz and /metrics to the app's web server, and the broker
    probe."""

    async def probe() -> None:
        await probe_brokers(app)

    app.timer(BROKER_PROBE_SECONDS)(probe)

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        # Answering at all is the point: it proves the event loop is not blocked.
        return web.json({"status": "alive"})

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        status, report = await health_report(app)
        return web.json(report, status=status)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, report = readiness_report(app)
        return web.json(report, status=status)

    register_metrics_page(app)
