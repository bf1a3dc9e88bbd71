"""Scrape a worker's /metrics in integration tests and read its samples."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.utils.worker import WorkerProcess

__all__ = ["Samples", "fates_counted", "sample", "scrape", "wait_for_samples"]

# (sample name, its labels sorted) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(worker: WorkerProcess) -> tuple[str, Samples]:
    """-> (the Content-Type, every sample) of one GET /metrics."""
    with urllib.request.urlopen(worker.web_url + "/metrics", timeout=5) as response:  # noqa: S310
        content_type = str(response.headers["Content-Type"])
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The value of ``name`` with exactly ``labels`` (KeyError when there is none)."""
    return samples[(name, tuple(sorted(labels.items())))]


def fates_counted(samples: Samples) -> float:
    """Requests counted in any fate."""
    return sum(v for (name, _), v in samples.items() if name == "stream_app_requests_total")


def wait_for_samples(
    worker: WorkerProcess, check: Callable[[Samples], bool], what: str, timeout: float = 90
) -> Samples:
    """Scrape until ``check`` holds; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, samples = scrape(worker)
        if check(samples):
            return samples
        time.sleep(0.25)
    raise TimeoutError(f"/metrics never showed {what}:\n{worker.log_tail()}")
