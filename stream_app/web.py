"""The worker's HTTP pages: /livez (the event loop answers) and /health (JSON report)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from stream_app.kafka_admin import metadata_brokers
from stream_app.monitoring.health import evaluate_health

if TYPE_CHECKING:
    from stream_app.app import StreamApp

__all__ = ["health_report", "register_views"]

_KAFKA_TIMEOUT = 2.0


async def health_report(app: StreamApp) -> tuple[int, dict[str, Any]]:
    """HTTP status and report: 200 when the app runs and the broker answers, else 503.

    Kafka is asked afresh (a metadata round trip) on each call, so the answer is
    about now, not about the last time a client happened to talk to the broker.
    """
    running = bool(app.started) and not app.should_stop and not app.crashed
    brokers = await metadata_brokers(app.settings.bootstrap_servers, timeout=_KAFKA_TIMEOUT)
    assigned = Counter(tp.topic for tp in app.consumer.assignment()) if running else Counter()
    verdict = evaluate_health(
        {"app": {"up": running}, "kafka": {"connected": brokers > 0}}, critical=("app", "kafka")
    )
    report = {
        "status": verdict.status,
        "app": {
            "id": app.conf.id,
            "running": running,
            "rebalancing": bool(app.rebalancing),
            "recovered": _recovered(app),
        },
        "kafka": {
            "reachable": brokers > 0,
            "brokers": brokers,
            "bootstrap": app.settings.bootstrap_servers,
            "assigned_partitions": dict(sorted(assigned.items())),
        },
    }
    return verdict.http_status, report


def _recovered(app: StreamApp) -> bool:
    # TableManager's recovery service is not part of Faust's declared interface.
    recovery = getattr(app.tables, "recovery", None)
    return bool(recovery is not None and recovery.completed.is_set())


def register_views(app: StreamApp) -> None:
    """Add /livez and /health to the app's web server."""

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        # Answering at all is the point: it proves the event loop is not blocked.
        return web.json({"status": "alive"})

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        status, report = await health_report(app)
        return web.json(report, status=status)
