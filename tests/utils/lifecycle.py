"""Helpers for the registry tests: a ticking clock, gate reports, random operations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from stream_app.errors import RegistryError
from stream_app.lifecycle.gate_report import GateCheck, GateReport, ModelIdentity
from stream_app.lifecycle.registry import ModelRegistry

START = datetime(2026, 1, 1, tzinfo=UTC)


class TickingClock:
    """Returns START, START + 1 s, START + 2 s, ... one step per call."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.next, self.step, self.calls = start, step, 0

    def __call__(self) -> datetime:
        now = self.next
        self.next += self.step
        self.calls += 1
        return now


def passing_report(
    name: str | None,
    version: str | None,
    digest: str | None = None,
) -> GateReport:
    """A gate report whose checks all passed, for the model version it names."""
    checks = (
        GateCheck("input_shape", True, "4 features"),
        GateCheck("accuracy", True, "0.8800 >= 0.8", 0.88, 0.8),
    )
    return GateReport(checks, {"accuracy": 0.88}, ModelIdentity(name, version, digest))


def failing_report(name: str = "m", version: str = "1.0.0") -> GateReport:
    """A gate report with a failed latency check."""
    checks = (
        GateCheck("accuracy", True, "0.8800 >= 0.8", 0.88, 0.8),
        GateCheck("latency_p95", False, "p95 80 ms > 50 ms", 80.0, 50.0),
    )
    identity = ModelIdentity(name, version)
    return GateReport(checks, {"accuracy": 0.88, "latency_p95_ms": 80.0}, identity)


# Random registry operations for the fold property tests: most are valid, some are
# refused (duplicates, wrong expected version, failed gate); refusals must leave no trace.
NAMES = ("churn_predictor", "fraud_detector")
VERSIONS = ("1.0.0", "1.1.0", "1.9.0", "1.10.0", "2.0.0-rc.1", "2.0.0")
METRIC_NAMES = ("accuracy", "f1", "latency_ms")


def registry_operations() -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Lists of ("register" | "promote" | "rollback", ...) operations."""
    metrics = st.dictionaries(
        st.sampled_from(METRIC_NAMES),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=3,
    )
    name, version = st.sampled_from(NAMES), st.sampled_from(VERSIONS)
    mostly = st.sampled_from((True, True, True, False))
    # Promotions pick among the versions registered so far, by index, and are drawn
    # twice as often so that production histories get long enough to roll back.
    promote = st.tuples(st.just("promote"), name, st.integers(0, 5), mostly, mostly)
    operation = st.one_of(
        st.tuples(st.just("register"), name, version, metrics, st.booleans()),
        promote,
        promote,
        st.tuples(st.just("rollback"), name),
    )
    return st.lists(operation, min_size=12, max_size=40)


def run_operations(registry: ModelRegistry, operations: list[tuple[Any, ...]]) -> int:
    """Apply the operations, swallowing refusals; returns how many were accepted."""
    accepted = 0
    for op in operations:
        try:
            if op[0] == "register":
                _, name, version, metrics, tagged = op
                tags = {"team": "ml"} if tagged else None
                registry.register(name, version, metrics, f"models/{name}/{version}", tags=tags)
            elif op[0] == "promote":
                _, name, index, honest, passing = op
                known = registry.versions(name) if name in registry.models() else ["1.0.0"]
                current = registry.production(name)
                others = [v for v in known if v != current] or known
                version = others[index % len(others)]
                expected = current if honest else (None if current else "0.0.1")
                report = passing_report(name, version) if passing else failing_report(name, version)
                registry.promote(name, version, expected_current=expected, gate_report=report)
            else:
                registry.rollback(op[1])
            accepted += 1
        except RegistryError:
            pass
    return accepted
