"""The worker's Prometheus metrics, in a registry of its own (GET /metrics).

Each app holds one :class:`Metrics` with its own ``CollectorRegistry`` (never the
process-wide default), so several apps in one process (tests, the agents tier) keep
separate counts. Counters are moved only where an outcome is decided and delivered:
intake notes a :class:`RequestFate` on each fate message it sends and the batch driver
hands the notes over once the batch's outputs and rows are acknowledged, so a batch
that fails and is tried again counts once. The rest is read when scraped, from what the
worker already holds (sources added with :meth:`Metrics.add_source`).
"""

from __future__ import annotations

from collections import Counter as TallyCounter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

__all__ = [
    "CONTENT_TYPE",
    "BATCH_SIZE_BUCKETS",
    "LATENCY_BUCKETS",
    "Metrics",
    "RequestFate",
    "counter_family",
    "gauge_family",
    "info_family",
]

# The text exposition format, version 0.0.4 (prometheus_client.CONTENT_TYPE_LATEST may
# move to a newer one that older scrapers do not read).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a fast model call (a few ms) to a request that waited in a backlog for minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Requests per model call; a batch holds at most STREAM_BATCH_SIZE (256 by default).
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000)

Fate = Literal["scored", "invalid", "throttled"]
Source = Callable[[], Iterable[Metric]]


@dataclass(frozen=True)
class RequestFate:
    """What became of one request, noted on the message that tells it.

    ``reason``: a refused request's reject reason; ``variant``, ``model_version`` and
    ``latency_seconds`` (from its arrival to its prediction): a scored request's.
    """

    fate: Fate
    reason: str | None = None
    variant: str | None = None
    model_version: str | None = None
    latency_seconds: float | None = None

    @property
    def went_to_model(self) -> bool:
        """Whether the request was in a model call (scored, or failed by the model).

        Example:
            >>> RequestFate("invalid", reason="scoring_failed").went_to_model
            True
            >>> RequestFate("invalid", reason="schema").went_to_model
            False
        """
        return self.fate == "scored" or self.reason == "scoring_failed"


class Metrics:
    """The metrics of one app, and the text of a scrape.

    Example:
        >>> metrics = Metrics()
        >>> metrics.count_fates([
        ...     RequestFate("scored", variant="A", model_version="1.0.0", latency_seconds=0.02),
        ...     RequestFate("invalid", reason="schema"),
        ... ])
        >>> text = metrics.render().decode()
        >>> 'stream_app_requests_total{fate="scored"} 1.0' in text
        True
        >>> 'stream_app_requests_invalid_total{reason="schema"} 1.0' in text
        True
        >>> 'stream_app_scoring_batch_size_sum 1.0' in text
        True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._sources: list[Source] = []
        self.requests = Counter(
            "stream_app_requests", "Requests by fate, counted when their output was delivered.",
            ["fate"], registry=self.registry,
        )  # fmt: skip
        self.invalid = Counter(
            "stream_app_requests_invalid", "Refused requests by reject reason.",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "stream_app_scoring_latency_seconds",
            "Each prediction's latency, from its request's arrival to its prediction.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "stream_app_scoring_batch_size", "Requests per model call (micro-batch).",
            buckets=BATCH_SIZE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.predictions = Counter(
            "stream_app_predictions", "Predictions delivered, by variant and model version.",
            ["variant", "model_version"], registry=self.registry,
        )  # fmt: skip
        for fate in ("scored", "invalid", "throttled"):
            self.requests.labels(fate)  # exported at 0 before the first request
        self.registry.register(_Sources(self._sources))

    def count_fates(self, fates: Iterable[RequestFate]) -> None:
        """Count the fates of one delivered batch (the requests of one model call)."""
        # Tallied first: one labelled increment per kind rather than per request.
        by_fate: TallyCounter[str] = TallyCounter()
        by_reason: TallyCounter[str] = TallyCounter()
        by_model: TallyCounter[tuple[str, str]] = TallyCounter()
        to_model = 0
        for fate in fates:
            by_fate[fate.fate] += 1
            if fate.fate == "invalid":
                by_reason[fate.reason or "unknown"] += 1
            elif fate.fate == "scored":
                by_model[(fate.variant or "", fate.model_version or "")] += 1
                if fate.latency_seconds is not None:
                    self.latency.observe(max(fate.latency_seconds, 0.0))
            to_model += fate.went_to_model
        for name, n in by_fate.items():
            self.requests.labels(name).inc(n)
        for reason, n in by_reason.items():
            self.invalid.labels(reason).inc(n)
        for (variant, version), n in by_model.items():
            self.predictions.labels(variant, version).inc(n)
        if to_model:
            self.batch_size.observe(to_model)

    def add_source(self, source: Source) -> None:
        """Have ``source()`` add its metric families to every scrape (it must be cheap:
        it runs on the event loop)."""
        self._sources.append(source)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


class _Sources:
    """A collector that asks each source when scraped."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source()


def gauge_family(
    name: str, doc: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    """A gauge with one sample per ``(label values, value)``.

    Example:
        >>> family = gauge_family("g", "doc", ("table",), [(("rate-limits",), 3)])
        >>> [(s.labels, s.value) for s in family.samples]
        [({'table': 'rate-limits'}, 3)]
    """
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted((tuple(k), v) for k, v in values):
        family.add_metric(list(key), value)
    return family


def counter_family(
    name: str, doc: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]
) -> CounterMetricFamily:
    """A counter (``name`` without ``_total``) with one sample per label values, for
    counts the worker keeps anyway (skips, failures)."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted((tuple(k), v) for k, v in values):
        family.add_metric(list(key), value)
    return family


def info_family(name: str, doc: str, value: Mapping[str, str] | None) -> InfoMetricFamily:
    """An Info metric (``name`` without ``_info``) holding ``value`` as its labels; None:
    the metric is declared, without a sample.

    Example:
        >>> [s.labels for s in info_family("m", "doc", {"version": "1.0.0"}).samples]
        [{'version': '1.0.0'}]
        >>> info_family("m", "doc", None).samples
        []
    """
    return InfoMetricFamily(name, doc, value=None if value is None else dict(value))
