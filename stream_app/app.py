"""The Faust app, built from Settings; it imports no agents (agents/ import it)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.types.transports import ConsumerT

from stream_app.config import Settings
from stream_app.dashboard.traffic import TrafficTally
from stream_app.faults import Faults
from stream_app.faust_fixes import CommitGate, QuietWorker, SeekingTableManager, new_consumer
from stream_app.faust_store import HeldTable
from stream_app.kafka_admin import ConfigDrift, TopicRequest, config_drift, ensure_topics
from stream_app.kafka_auth import client_security, faust_credentials
from stream_app.logs import json_logging_config
from stream_app.memory import freeze_start, hold_mmap_threshold
from stream_app.metrics import Metrics
from stream_app.partitioner import KeyPartitioner
from stream_app.serving import ServingModels
from stream_app.topics import MAX_MESSAGE_BYTES, TIMESTAMP_TYPE, Topics, declare_topics
from stream_app.web import register_views

__all__ = ["HEARTBEAT_SECONDS", "StreamApp", "create_app"]

# How often a worker's consumer tells the group it is alive (a sixth of the shortest
# session timeout the settings allow).
HEARTBEAT_SECONDS = 1.0


class StreamApp(faust.App):
    """A faust.App that creates the topics it declares before its consumer subscribes.

    The broker does not create topics on demand (see localkafka), so a topic made
    with :meth:`declared_topic` exists with ``settings.partitions`` partitions before
    any agent reads it.
    """

    settings: Settings
    # TLS and SASL options for the app's own aiokafka clients (kafka_auth), built once.
    kafka_security: dict[str, Any]
    kafka_topics: Topics
    serving: ServingModels
    drivers: dict[str, Any]  # agent name -> its agents.driver.BatchDriver
    # The registry follower's /health component (agents/registry.py), when it runs.
    registry_health: Callable[[], dict[str, Any]] | None
    # Its /registry page (the dashboard draws it too).
    registry_report: Callable[[], dict[str, Any]] | None
    # This worker's fates and latencies of the current interval (the dashboard's traffic).
    traffic: TrafficTally
    changelog_reads: Counter[str]  # table name -> changelog records read into it
    # Awaited at start, after the topics exist and before the consumer joins the group.
    before_join: list[Callable[[], Awaitable[None]]]

    def __init__(self, settings: Settings) -> None:
        security = client_security(settings)
        super().__init__(
            settings.app_id,
            broker=settings.broker_url,
            broker_credentials=faust_credentials(security),
            store=settings.store,
            datadir=str(settings.data_dir / settings.app_id),
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            processing_guarantee=settings.processing_guarantee,
            # A killed worker's partitions resume elsewhere once its session expires and
            # a survivor's next heartbeat learns of the rebalance: heartbeats every
            # second (Faust's 3 s added up to 3 s to every failover). They come from the
            # consumer's own thread and the batch work runs beside them (the model and
            # the log scrubbing in the executor), so a busy worker keeps its session.
            broker_session_timeout=settings.session_timeout_seconds,
            broker_heartbeat_interval=HEARTBEAT_SECONDS,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            web_port=settings.web_port,
            key_serializer="raw",
            value_serializer="raw",
            autodiscover=False,
            # Room for the largest message of topics.MAX_MESSAGE_BYTES plus batch overhead.
            producer_max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
            # A few ms of linger lets the producer batch the many small messages an agent
            # sends per event instead of one produce request each.
            producer_linger_ms=5,
            # Kafka's default partitioner with each key hashed once for all the messages
            # that share it (a prediction, its log and its exposure), not once per message.
            producer_partitioner=KeyPartitioner(),
            # Recovery that seeks before it resumes the streams (see faust_fixes).
            TableManager=SeekingTableManager,
            # No terminal spinner, which set the root logger to DEBUG (see faust_fixes).
            Worker=QuietWorker,
            # memory:// tables that keep what they hold across a rebalance (faust_store).
            Table=HeldTable,
            # Faust's own pages list every table and topic (internal ones too) and which
            # host owns a key: the worker serves only its documented pages.
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            # JSON lines: Faust's handlers with our formatter (stream_app/logs.py).
            logging_config=json_logging_config() if settings.log_format == "json" else None,
        )
        self.settings = settings
        self.kafka_security = security
        # Batches and transaction commits take turns (see faust_fixes.CommitGate).
        self.commit_gate = CommitGate()
        self.drivers = {}
        self.registry_health = None
        self.registry_report = None
        self.traffic = TrafficTally(started=time.time())
        self.changelog_reads = Counter()
        self.before_join = []
        # Agents whose batches fail (see stream_app.faults), for /health and /readyz.
        self.faults = Faults()
        # GET /metrics: this app's own registry (stream_app/metrics.py).
        self.metrics = Metrics()
        self.serving = ServingModels(b_share=settings.ab_b_share)
        self._declared: list[TopicRequest] = []
        # Input topics whose Kafka timestamps their producers choose (found at start).
        self.clock_drift: list[ConfigDrift] = []
        # (brokers that answered, time.monotonic() of the probe), kept by a timer.
        self.broker_probe: tuple[int, float] | None = None

    @property
    def running(self) -> bool:
        """Started, not stopping and not crashed (what /health, /readyz and /metrics ask)."""
        return bool(self.started) and not self.should_stop and not self.crashed

    def declared_topic(
        self,
        name: str,
        *,
        config: Mapping[str, str] | None = None,
        partitions: int | None = None,
    ) -> Any:
        """A raw-bytes topic that the app creates on the broker when it starts.

        ``partitions`` defaults to ``settings.partitions``, which every topic that an
        agent with a table reads must have (changelogs are co-partitioned with it).
        """
        count = self.settings.partitions if partitions is None else partitions
        self._declared.append(
            TopicRequest(name, count, self.settings.replication_factor, config or {})
        )
        return self.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            config=config,
            partitions=count,
        )

    async def create_topics(self) -> list[str]:
        """Create the declared topics the broker lacks; return their names."""
        return await ensure_topics(
            self.settings.bootstrap_servers, self._declared, security=self.kafka_security
        )

    def _new_consumer(self) -> ConsumerT:
        """Faust's consumer, with commits that wait for the batches in flight."""
        return new_consumer(self)

    async def on_first_start(self) -> None:
        """Make the data directory's parents (Faust creates only the last level), have
        large message buffers returned to the system when freed, and keep what the start
        built out of the garbage collector's full passes (stream_app/memory.py)."""
        hold_mmap_threshold()
        freeze_start()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await super().on_first_start()

    async def on_start(self) -> None:
        """Create missing topics, run the ``before_join`` hooks, then start as Faust does
        (producer, consumer, agents...)."""
        await super().on_start()
        bootstrap = self.settings.bootstrap_servers
        security = self.kafka_security
        created = await self.create_topics()
        if created:
            self.log.info("created topics: %s", ", ".join(created))
        self.clock_drift = await config_drift(
            bootstrap, self._declared, (TIMESTAMP_TYPE,), security=security
        )
        for drift in self.clock_drift:
            self.log.warning(
                "input topic %s keeps %s=%s: its producers choose the Kafka timestamps the "
                "rate limit and the event-time checks rely on; fix it with: %s",
                drift.topic, drift.key, drift.found, drift.fix(bootstrap),
            )  # fmt: skip
        # The consumer, a child service, joins the group only after on_start returns.
        for hook in self.before_join:
            await hook()


def create_app(settings: Settings) -> StreamApp:
    """The app with every topic of topics.py and the /livez and /health pages.

    Example:
        >>> from stream_app.config import load_settings
        >>> app = create_app(load_settings({}, app_id="doc"))
        >>> app.kafka_topics.predictions.get_topic_name()
        'predictions'
    """
    app = StreamApp(settings)
    app.kafka_topics = declare_topics(app)
    register_views(app)
    return app
