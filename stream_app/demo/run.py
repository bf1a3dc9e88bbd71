"""``make demo`` end to end: Kafka, two bundles, the registry, a worker, the day, the report.

:func:`run_demo` runs the phases in order and prints as it goes through ``echo``; the
command (``stream_app.commands.demo``) only parses options and calls it. Every phase is
timed, so a slow run says where the time went.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stream_app import localkafka
from stream_app.config import Settings, load_settings
from stream_app.dashboard.history import ReportHistory
from stream_app.demo.bundles import DEMO_MODELS, ensure_bundle, register_and_promote
from stream_app.demo.collect import OutputCollector
from stream_app.demo.keys import demo_keys
from stream_app.demo.launch import (
    demo_settings,
    free_port,
    get_json,
    port_free,
    start_worker,
    stop_worker,
    wait_serving,
)
from stream_app.demo.play import demo_producer, in_flight_limit, input_topics, play
from stream_app.demo.report import DemoSummary
from stream_app.demo.report_html import REPORT_FILE, html_report, write_html_report
from stream_app.demo.report_text import RunFacts, render_report
from stream_app.demo.scenario import Scenario, ScenarioConfig, build_scenario
from stream_app.errors import StreamAppError
from stream_app.kafka_admin import ensure_topics
from stream_app.kafka_auth import client_security
from stream_app.registry_kafka import open_registry
from stream_app.topics import topic_names

__all__ = ["DEFAULT_REQUESTS", "PAGES", "DemoOptions", "DemoResult", "run_demo"]

# Requests in the default day (outcomes and metrics come on top): about a minute of
# playing on a 2-core machine that also runs the broker (see BENCHMARKS.md).
DEFAULT_REQUESTS = 6_000
PAGES = ("/health", "/readyz", "/registry", "/alerts", "/reports/drift", "/reports/ab")
Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    """What a demo run plays and how long it waits."""

    seed: int = 7
    requests: int = DEFAULT_REQUESTS
    keep_worker: bool = False
    ready_timeout: float = 120.0
    drain_timeout: float = 180.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.ready_timeout <= 0 or self.drain_timeout <= 0:
            raise ValueError("need requests >= 1 and timeouts > 0")


@dataclass(frozen=True)
class DemoResult:
    """The run's settings, scenario, folded outputs, printed report and phase timings."""

    settings: Settings
    scenario: Scenario
    summary: DemoSummary
    report: str
    drained: bool
    phases: Mapping[str, float] = field(default_factory=dict)
    worker_pid: int | None = None
    html_report: Path | None = None
    # The worker itself when the run keeps it (--keep-worker): the caller stops it.
    kept_worker: subprocess.Popen[bytes] | None = field(default=None, compare=False)


class _Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - started, 2)


def run_demo(
    options: DemoOptions, echo: Echo, environ: Mapping[str, str] | None = None
) -> DemoResult:
    """Run the whole demo once; ``environ`` None reads the process environment."""
    phases = _Phases()
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    given = load_settings(environ)
    keys = demo_keys(given, given.data_dir / "demo" / "keys")
    settings = demo_settings(environ, run_id, **keys)
    if not port_free(settings.web_host, settings.web_port):
        if "web_port" in given.model_fields_set:
            raise StreamAppError(f"port {settings.web_port} is taken: choose another")
        settings = demo_settings(environ, run_id, web_port=free_port(), **keys)
    with phases.timed("kafka"):
        broker = localkafka.start(localkafka.broker_config(settings))
    echo(f"kafka: {broker.describe()}")
    echo(f"run {run_id}: topics prefixed {settings.topic_prefix!r}, data in {settings.data_dir}")
    with phases.timed("scenario"):
        scenario = _scenario(settings, options)
    echo(f"scenario (seed {options.seed}): {scenario.counts()}")
    with phases.timed("bundles"):
        _publish_models(settings, echo)
    oldest = scenario.messages[0].timestamp if scenario.messages else scenario.truth.start
    wanted = input_topics(settings, oldest, datetime.now(UTC))
    asyncio.run(
        ensure_topics(settings.bootstrap_servers, wanted, security=client_security(settings))
    )
    log_path = settings.data_dir / "logs" / f"{settings.app_id}.log"
    worker = start_worker(settings, log_path)
    base = f"http://{settings.web_host}:{settings.web_port}"
    echo(f"worker pid {worker.pid} starting, log {log_path}")
    try:
        return _serve_and_play(settings, scenario, options, worker, echo, phases)
    finally:
        if not options.keep_worker or worker.poll() is not None:
            stop_worker(worker)
            shutil.rmtree(settings.data_dir / settings.app_id, ignore_errors=True)
            echo(f"worker stopped. {_kafka_hint(settings)}")
        else:
            _print_pages(base, worker, echo, settings)


def _serve_and_play(
    settings: Settings,
    scenario: Scenario,
    options: DemoOptions,
    worker: subprocess.Popen[bytes],
    echo: Echo,
    phases: _Phases,
) -> DemoResult:
    base = f"http://{settings.web_host}:{settings.web_port}"
    want = tuple(m.version for m in DEMO_MODELS)
    with phases.timed("worker_ready"):
        wait_serving(worker, base, (want[0], want[1]), options.ready_timeout)
    echo(f"worker ready on {base}: production {want[0]}, challenger {want[1]}")
    summary, history, sent, drained, wall = asyncio.run(
        _play_and_collect(settings, scenario, options, echo, phases)
    )
    facts = RunFacts(sent, wall, own_services=frozenset({settings.app_id}), app_id=settings.app_id)
    report = render_report(summary, facts)
    if not drained:
        echo(f"timed out after {options.drain_timeout:.0f} s: the report below is partial")
    echo("")
    echo(report)
    with phases.timed("html_report"):
        html_path = _write_html(settings, base, history, report)
    echo("phases (s): " + ", ".join(f"{k} {v:g}" for k, v in phases.seconds.items()))
    echo(f"HTML report: {html_path}")
    kept = worker if options.keep_worker else None
    return DemoResult(settings, scenario, summary, report, drained, dict(phases.seconds),
                      worker.pid, html_path, kept)  # fmt: skip


def _write_html(settings: Settings, base: str, history: ReportHistory, report: str) -> Path:
    """The report with the dashboard's charts, from the outputs read and the worker's
    traffic and registry pages."""
    traffic, registry = get_json(base + "/dashboard/traffic"), get_json(base + "/registry")
    page = html_report(
        history,
        traffic[1] if traffic and traffic[0] == 200 else None,
        registry[1] if registry and registry[0] == 200 else None,
        report,
        datetime.now(UTC),
    )
    return write_html_report(settings.data_dir / REPORT_FILE, page)


async def _play_and_collect(
    settings: Settings, scenario: Scenario, options: DemoOptions, echo: Echo, phases: _Phases
) -> tuple[DemoSummary, ReportHistory, dict[str, int], bool, float]:
    names = topic_names(settings)
    security = client_security(settings)
    collector = OutputCollector(settings.bootstrap_servers, names, security)
    producer = demo_producer(settings.bootstrap_servers, security)
    truth = scenario.truth
    span = (truth.end - truth.start).total_seconds()
    limit = in_flight_limit(truth.requests, span, settings.window_grace_seconds)
    await collector.start()
    await producer.start()
    started = time.monotonic()
    try:
        with phases.timed("play"):
            sent = await play(producer, names, scenario.messages, collector, limit=limit,
                              report=lambda p: echo(p.line()))  # fmt: skip
        echo("all sent; waiting for the last outputs and the last windows to close")
        with phases.timed("drain"):
            status = await collector.wait_drained(
                truth, timeout=options.drain_timeout, report=lambda s: echo(s.describe())
            )
        elapsed = time.monotonic() - started
        return collector.builder.summary(), collector.history, dict(sent), status.done, elapsed
    finally:
        await producer.stop()
        await collector.stop()


def _scenario(settings: Settings, options: DemoOptions) -> Scenario:
    # Traffic runs past midnight for longer than the grace, so the last hour's windows close.
    flush = min(86_400.0, settings.window_grace_seconds + 900.0)
    # One checkout-api point per metrics window: the incident's ramp still shows (5-minute
    # steps), and a point a minute would be a fifth of the day's messages.
    config = ScenarioConfig.from_settings(
        settings,
        seed=options.seed,
        n_requests=options.requests,
        flush_seconds=flush,
        metrics_interval_seconds=300.0,  # checkout-api reports every 5 minutes
    )
    return build_scenario(config)


def _publish_models(settings: Settings, echo: Echo) -> None:
    key = settings.bundle_signing_key_bytes
    bundles = {}
    for model in DEMO_MODELS:
        bundle, reused = ensure_bundle(settings.data_dir, settings.model_name, model, key)
        bundles[model] = bundle
        echo(f"bundle {bundle.name} {bundle.version}: {'reused' if reused else 'trained'}, "
             f"{bundle.directory}")  # fmt: skip
    register_and_promote(open_registry(settings), bundles, echo)


def _print_pages(
    base: str, worker: subprocess.Popen[bytes], echo: Echo, settings: Settings
) -> None:
    echo(f"\nthe worker (pid {worker.pid}) keeps running; its dashboard: {base}/dashboard")
    echo("its pages:")
    for page in PAGES:
        answer = get_json(base + page)
        status = "no answer" if answer is None else str(answer[0])
        echo(f"  {base}{page}  ({status})")
    echo(f"stop it with: kill {worker.pid}. {_kafka_hint(settings)}")


def _kafka_hint(settings: Settings) -> str:
    return f"Kafka is still up on {settings.bootstrap_servers[0]}: `make kafka-down` stops it."
