"""What has gone wrong in the pipeline and not yet recovered: the agents' failed batches.

An agent whose batch raised (a send that was never acknowledged, a fenced producer, a
bug) is down until one of its batches completes again; /health is unhealthy and /readyz
not ready meanwhile, naming the agent and the error's type (never its message, which
could quote a record). Every failure is counted, recovered or not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Fault", "Faults"]


@dataclass(frozen=True)
class Fault:
    """The first failure of an agent since its last completed batch."""

    agent: str
    error: str  # the exception's type
    since: datetime

    def describe(self) -> str:
        """One line for /readyz.

        Example:
            >>> Fault("intake", "KafkaTimeoutError", datetime(2026, 1, 1, tzinfo=UTC)).describe()
            'agent intake failing since 2026-01-01T00:00:00+00:00 (KafkaTimeoutError)'
        """
        return f"agent {self.agent} failing since {self.since.isoformat()} ({self.error})"


class Faults:
    """The agents that are down now, and how often each has failed.

    Example:
        >>> faults = Faults()
        >>> faults.failed("intake", TimeoutError("no acknowledgement"))
        >>> sorted(faults.down), faults.counts["intake"]
        (['intake'], 1)
        >>> faults.failed("intake", TimeoutError())  # still the first failure's time
        >>> faults.recovered("intake")
        >>> faults.down, faults.counts["intake"]
        ({}, 2)
    """

    def __init__(self) -> None:
        self.down: dict[str, Fault] = {}
        self.counts: Counter[str] = Counter()

    def failed(self, agent: str, error: BaseException) -> None:
        """Record that a batch of ``agent`` raised ``error``."""
        self.counts[agent] += 1
        if agent not in self.down:
            self.down[agent] = Fault(agent, type(error).__name__, datetime.now(UTC))

    def recovered(self, agent: str) -> None:
        """Record that a batch of ``agent`` completed."""
        if self.down:
            self.down.pop(agent, None)
