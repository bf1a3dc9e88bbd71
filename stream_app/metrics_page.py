"""GET /metrics: the app's counters plus what the worker holds, read when scraped.

Read at scrape time, each cheap enough for the event loop: the served model (Info),
consumer lag per assigned partition (the consumer's highwater minus its position, both
kept by the Kafka client), rows per table (``len()`` of a memory store, RocksDB's own
estimate of a rocksdb one: no table is scanned), and the skips and failed batches the
agents count for /health. Drift severity and alerts firing come from the followers of
agents/dashboards.py, which adds them as a source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from faust.stores.rocksdb import Store as RocksDBStore
from prometheus_client.metrics_core import Metric

from stream_app.metrics import CONTENT_TYPE, counter_family, gauge_family, info_family

if TYPE_CHECKING:
    from stream_app.app import StreamApp

__all__ = ["consumer_lag", "register_metrics_page", "table_rows"]

# A partition whose position the client cannot tell within this (being reset during a
# rebalance) is left out of that scrape rather than holding the page.
_POSITION_TIMEOUT = 1.0


async def consumer_lag(app: StreamApp) -> dict[tuple[str, str], float]:
    """``(topic, partition) -> messages`` between the consumer's position and the
    partition's highwater, for each partition assigned and known to both."""
    running = app.running
    if not running or app.rebalancing:
        return {}
    consumer = app.consumer
    lag: dict[tuple[str, str], float] = {}
    for tp in sorted(consumer.assignment()):
        try:
            highwater = consumer.highwater(tp)
            position = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT)
        except Exception:  # noqa: BLE001, S112 - revoked meanwhile, or not fetched yet
            continue
        if highwater is None or highwater < 0 or position is None:
            continue  # unknown until fetched (-1: no last stable offset yet)
        lag[(tp.topic, str(tp.partition))] = float(max(highwater - position, 0))
    return lag


def table_rows(table: Any) -> int:
    """Rows a table holds on this worker: active and standby partitions, without a scan.

    With ``rocksdb://`` it is RocksDB's own estimate per partition database, less the key
    that holds the database's changelog offset: exact for rows written once, high by the
    overwrites and deletions that compaction has not merged yet.
    """
    data = table.data
    if not isinstance(data, RocksDBStore):
        return len(data)
    rows = 0
    for db in data._dbs.values():
        estimate = db.property_int_value("rocksdb.estimate-num-keys") or 0
        rows += max(estimate - (db.get(data.offset_key) is not None), 0)
    return rows


def _families(app: StreamApp, lag: dict[tuple[str, str], float]) -> Iterator[Metric]:
    current = app.serving.current
    served = None if current is None else {
        "model_name": str(current.production.metadata.get("name", "")),
        "version": current.production_version,
        "challenger_version": current.challenger_version or "",
    }  # fmt: skip
    yield info_family(
        "stream_app_model", "The model this worker serves (variant A) and its challenger (B).",
        served,
    )  # fmt: skip
    yield gauge_family(
        "stream_app_consumer_lag", "Messages between the consumer's position and the highwater.",
        ("topic", "partition"), lag.items(),
    )  # fmt: skip
    rows = {(str(table.name),): float(table_rows(table)) for table in app.tables.values()}
    yield gauge_family(
        "stream_app_table_rows", "Rows a table holds on this worker.", ("table",), rows.items()
    )
    skipped = {
        (driver.skips.agent, reason): float(n)
        for driver in app.drivers.values()
        for reason, n in driver.skips.counts.items()
    }
    yield counter_family(
        "stream_app_events_skipped", "Events an agent skipped, by reason.", ("agent", "reason"),
        skipped.items(),
    )  # fmt: skip
    failures = {(name,): 0.0 for name in app.drivers}
    failures.update({(name,): float(n) for name, n in app.faults.counts.items()})
    yield counter_family(
        "stream_app_agent_failures",
        "Batches of an agent that failed.",
        ("agent",),
        failures.items(),
    )


def register_metrics_page(app: StreamApp) -> None:
    """Add GET /metrics (the Prometheus text format) to the app's web server."""
    lag: dict[tuple[str, str], float] = {}
    app.metrics.add_source(lambda: _families(app, lag))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        fresh = await consumer_lag(app)
        lag.clear()
        lag.update(fresh)
        return web.bytes(app.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
