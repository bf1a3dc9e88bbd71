"""ModelRegistry: the classic case, ordering, best, compare-and-set promotion, rollback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings

from stream_app.errors import PromotionRefusedError, RegistryError
from stream_app.lifecycle.gate_report import GateReport, ModelIdentity
from stream_app.lifecycle.registry import (
    InMemoryRegistryStore,
    ModelRegistry,
    ProductionChange,
    fold,
)
from tests.utils.lifecycle import (
    START,
    TickingClock,
    failing_report,
    passing_report,
    registry_operations,
    run_operations,
)

CHURN = "churn_predictor"
FRAUD = "fraud_detector"


def at(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def classic() -> ModelRegistry:
    registry = ModelRegistry(clock=TickingClock())
    registry.register(CHURN, "1.0.0", {"accuracy": 0.85, "f1": 0.82}, "models/churn/1.0.0")
    registry.register(CHURN, "1.1.0", {"accuracy": 0.88, "f1": 0.85}, "models/churn/1.1.0")
    registry.register(FRAUD, "2.0.0", {"precision": 0.92, "recall": 0.78}, "models/fraud/2.0.0")
    return registry


def test_classic_case(classic: ModelRegistry) -> None:
    assert classic.models() == [CHURN, FRAUD]
    assert classic.versions(CHURN) == ["1.0.0", "1.1.0"]
    best = classic.best(CHURN, "accuracy")
    assert best is not None and best.version == "1.1.0"
    assert best.metrics == {"accuracy": 0.88, "f1": 0.85}
    assert classic.production(CHURN) is None

    gate = passing_report(CHURN, "1.1.0")
    change = classic.promote(CHURN, "1.1.0", expected_current=None, gate_report=gate)
    assert change == ProductionChange("promoted", "1.1.0", None, at(3), gate.summary())
    assert classic.production(CHURN) == "1.1.0"
    assert classic.history(CHURN) == [change]
    assert classic.production(FRAUD) is None


def test_registered_version_keeps_everything(classic: ModelRegistry) -> None:
    version = classic.register(
        FRAUD,
        "2.1.0",
        {"precision": 0.9, "latency_ms": 12},
        "models/fraud/2.1.0",
        digest="ab" * 32,
        tags={"owner": "risk"},
        directions={"latency_ms": "lower"},
    )
    assert version == classic.get(FRAUD, "2.1.0")
    assert version.metrics == {"precision": 0.9, "latency_ms": 12.0}
    assert version.directions == {"latency_ms": "lower"}
    assert (version.path, version.digest, version.tags) == (
        "models/fraud/2.1.0",
        "ab" * 32,
        {"owner": "risk"},
    )
    assert version.registered_at == at(3)


def test_versions_sort_semantically() -> None:
    registry = ModelRegistry(clock=TickingClock())
    for version in ["1.10.0", "1.9.0", "2.0.0-rc.1", "1.9.10", "2.0.0", "0.1.0"]:
        registry.register("m", version, {}, f"m/{version}")
    assert registry.versions("m") == ["0.1.0", "1.9.0", "1.9.10", "1.10.0", "2.0.0-rc.1", "2.0.0"]


def test_duplicate_version_is_refused_and_nothing_is_written(classic: ModelRegistry) -> None:
    before = classic.store.events()
    with pytest.raises(RegistryError, match="already registered; versions are immutable"):
        classic.register(CHURN, "1.0.0", {"accuracy": 0.99}, "elsewhere")
    assert classic.store.events() == before
    assert classic.get(CHURN, "1.0.0").metrics["accuracy"] == 0.85


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("m", "1.0", {}, "p"), {}, "not a semantic version"),
        (("m", "v1.0.0", {}, "p"), {}, "not a semantic version"),
        (("m", "1.0.0+build.5", {}, "p"), {}, "not a semantic version"),
        (("m", "01.0.0", {}, "p"), {}, "not a semantic version"),
        (("", "1.0.0", {}, "p"), {}, "model name must be a non-empty string"),
        (("m", "1.0.0", {"acc": float("nan")}, "p"), {}, "metric 'acc' must be a finite number"),
        (("m", "1.0.0", {"acc": float("inf")}, "p"), {}, "must be a finite number"),
        (("m", "1.0.0", {"acc": True}, "p"), {}, "must be a finite number"),
        (("m", "1.0.0", {"acc": "0.9"}, "p"), {}, "must be a finite number"),
        (("m", "1.0.0", {}, ""), {}, "path must be a non-empty string"),
        (("m", "1.0.0", {}, "p"), {"digest": ""}, "digest must be a non-empty string"),
        (("m", "1.0.0", {}, "p"), {"tags": {"a": 1}}, "tags must map strings to strings"),
        (("m", "1.0.0", {"a": 1}, "p"), {"directions": {"b": "lower"}}, "has no metric value"),
        (("m", "1.0.0", {"a": 1}, "p"), {"directions": {"a": "down"}}, "'higher' or 'lower'"),
    ],
)
def test_invalid_registrations(
    args: tuple[Any, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    registry = ModelRegistry(clock=TickingClock())
    with pytest.raises(RegistryError) as info:
        registry.register(*args, **kwargs)
    assert fragment in str(info.value)
    assert registry.store.events() == []


def test_best_skips_versions_without_the_metric_and_breaks_ties_by_version() -> None:
    registry = ModelRegistry(clock=TickingClock())
    registry.register("m", "1.0.0", {"auc": 0.9}, "p")
    registry.register("m", "1.1.0", {"f1": 0.7}, "p")
    registry.register("m", "1.2.0", {"auc": 0.9}, "p")
    registry.register("m", "1.3.0", {"auc": 0.8}, "p")
    assert registry.best("m", "auc").version == "1.2.0"  # type: ignore[union-attr]
    assert registry.best("m", "f1").version == "1.1.0"  # type: ignore[union-attr]
    assert registry.best("m", "auc", higher_is_better=False).version == "1.3.0"  # type: ignore[union-attr]
    assert registry.best("m", "recall") is None


def test_best_uses_the_recorded_direction_unless_told() -> None:
    registry = ModelRegistry(clock=TickingClock())
    registry.register("m", "1.0.0", {"latency_ms": 12.0}, "p", directions={"latency_ms": "lower"})
    registry.register("m", "1.1.0", {"latency_ms": 9.0}, "p")
    registry.register("m", "1.2.0", {"latency_ms": 15.0}, "p", directions={"latency_ms": "lower"})
    assert registry.best("m", "latency_ms").version == "1.1.0"  # type: ignore[union-attr]
    assert registry.best("m", "latency_ms", True).version == "1.2.0"  # type: ignore[union-attr]
    registry.register("m", "1.3.0", {"latency_ms": 1.0}, "p", directions={"latency_ms": "higher"})
    with pytest.raises(RegistryError, match="disagree"):
        registry.best("m", "latency_ms")


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.versions("nope"),
        lambda r: r.production("nope"),
        lambda r: r.history("nope"),
        lambda r: r.best("nope", "accuracy"),
        lambda r: r.rollback("nope"),
        lambda r: r.get("nope", "1.0.0"),
        lambda r: r.get(CHURN, "9.9.9"),
        lambda r: r.promote(
            CHURN, "9.9.9", expected_current=None, gate_report=passing_report(CHURN, "9.9.9")
        ),
    ],
)
def test_unknown_models_and_versions(classic: ModelRegistry, call: Any) -> None:
    with pytest.raises(RegistryError, match="unknown"):
        call(classic)


@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        (None, "a passing gate report is required"),
        (failing_report(CHURN, "1.1.0"), "the gate did not pass (latency_p95)"),
        (GateReport(()), "the gate did not pass (no checks)"),
        (passing_report(FRAUD, "1.1.0"), "for name 'fraud_detector'"),
        (passing_report(CHURN, "1.0.0"), "for version '1.0.0', not '1.1.0'"),
        (GateReport(passing_report(CHURN, "1.1.0").checks), "does not say which model"),
        (passing_report(None, "1.1.0"), "does not say which model"),
        (passing_report(CHURN, None), "does not say which model"),
        (passing_report(None, None, "ab" * 32), "does not say which model"),
    ],
)
def test_promotion_refused_by_the_gate(
    classic: ModelRegistry, report: GateReport | None, fragment: str
) -> None:
    before = classic.store.events()
    with pytest.raises(PromotionRefusedError) as info:
        classic.promote(CHURN, "1.1.0", expected_current=None, gate_report=report)
    assert fragment in str(info.value)
    assert classic.store.events() == before
    assert classic.production(CHURN) is None


@pytest.mark.parametrize(
    ("registered", "reported", "accepted"),
    [
        ("ab" * 32, "ab" * 32, True),
        ("ab" * 32, "cd" * 32, False),
        ("ab" * 32, None, True),  # compared only when both sides have a digest
        (None, "cd" * 32, True),
        (None, None, True),
    ],
)
def test_digest_is_compared_when_both_sides_have_one(
    registered: str | None, reported: str | None, accepted: bool
) -> None:
    registry = ModelRegistry(clock=TickingClock())
    registry.register("m", "1.0.0", {}, "p", digest=registered)
    report = passing_report("m", "1.0.0", reported)
    if accepted:
        registry.promote("m", "1.0.0", expected_current=None, gate_report=report)
        assert registry.production("m") == "1.0.0"
    else:
        with pytest.raises(PromotionRefusedError, match=f"for digest '{reported}', not"):
            registry.promote("m", "1.0.0", expected_current=None, gate_report=report)
        assert len(registry.store.events()) == 1


def test_a_report_read_back_from_json_still_names_its_model() -> None:
    registry = ModelRegistry(clock=TickingClock())
    registry.register("m", "1.0.0", {}, "p", digest="ab" * 32)
    body = json.loads(json.dumps(passing_report("m", "1.0.0", "ab" * 32).to_dict()))
    other = json.loads(json.dumps(passing_report("m", "1.1.0").to_dict()))
    with pytest.raises(PromotionRefusedError, match="for version '1.1.0', not '1.0.0'"):
        registry.promote(
            "m", "1.0.0", expected_current=None, gate_report=GateReport.from_dict(other)
        )
    change = registry.promote(
        "m", "1.0.0", expected_current=None, gate_report=GateReport.from_dict(body)
    )
    assert change.gate is not None and change.gate["model"]["version"] == "1.0.0"


def test_matching_identity_is_accepted() -> None:
    registry = ModelRegistry(clock=TickingClock())
    registry.register("m", "1.0.0", {}, "p", digest="ab" * 32)
    identity = ModelIdentity("m", "1.0.0", "ab" * 32)
    change = registry.promote(
        "m", "1.0.0", expected_current=None, gate_report=passing_report("m", "1.0.0", "ab" * 32)
    )
    assert change.gate is not None and change.gate["model"] == identity.to_dict()


def test_promotion_is_compare_and_set(classic: ModelRegistry) -> None:
    old, new = passing_report(CHURN, "1.0.0"), passing_report(CHURN, "1.1.0")
    classic.promote(CHURN, "1.0.0", expected_current=None, gate_report=old)
    with pytest.raises(PromotionRefusedError, match="is '1.0.0', caller expected None"):
        classic.promote(CHURN, "1.1.0", expected_current=None, gate_report=new)
    with pytest.raises(PromotionRefusedError, match="caller expected '0.9.0'"):
        classic.promote(CHURN, "1.1.0", expected_current="0.9.0", gate_report=new)
    with pytest.raises(PromotionRefusedError, match="already in production"):
        classic.promote(CHURN, "1.0.0", expected_current="1.0.0", gate_report=old)
    change = classic.promote(CHURN, "1.1.0", expected_current="1.0.0", gate_report=new)
    assert (change.version, change.previous) == ("1.1.0", "1.0.0")


def test_history_and_rollback_walk_back_through_promotions() -> None:
    registry = ModelRegistry(clock=TickingClock())
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        registry.register("m", version, {}, "p")  # t = 0, 1, 2

    def gate(version: str) -> GateReport:
        return passing_report("m", version)

    registry.promote("m", "1.0.0", expected_current=None, gate_report=gate("1.0.0"))  # t = 3
    with pytest.raises(PromotionRefusedError, match="no earlier production version"):
        registry.rollback("m")
    registry.promote("m", "1.1.0", expected_current="1.0.0", gate_report=gate("1.1.0"))  # t = 4
    registry.promote("m", "1.2.0", expected_current="1.1.0", gate_report=gate("1.2.0"))  # t = 5
    assert registry.rollback("m") == ProductionChange("rolled_back", "1.1.0", "1.2.0", at(6))
    assert registry.rollback("m") == ProductionChange("rolled_back", "1.0.0", "1.1.0", at(7))
    assert registry.production("m") == "1.0.0"
    with pytest.raises(PromotionRefusedError):
        registry.rollback("m")
    registry.promote("m", "1.2.0", expected_current="1.0.0", gate_report=gate("1.2.0"))  # t = 8
    assert [(c.kind, c.version, c.previous, c.at) for c in registry.history("m")] == [
        ("promoted", "1.0.0", None, at(3)),
        ("promoted", "1.1.0", "1.0.0", at(4)),
        ("promoted", "1.2.0", "1.1.0", at(5)),
        ("rolled_back", "1.1.0", "1.2.0", at(6)),
        ("rolled_back", "1.0.0", "1.1.0", at(7)),
        ("promoted", "1.2.0", "1.0.0", at(8)),
    ]
    assert registry.rollback("m").version == "1.0.0"


def test_state_is_the_fold_of_the_store(classic: ModelRegistry) -> None:
    classic.promote(
        CHURN, "1.0.0", expected_current=None, gate_report=passing_report(CHURN, "1.0.0")
    )
    classic.promote(
        CHURN, "1.1.0", expected_current="1.0.0", gate_report=passing_report(CHURN, "1.1.0")
    )
    classic.rollback(CHURN)
    assert fold(classic.store.events()) == classic.state
    replayed = ModelRegistry(InMemoryRegistryStore(classic.store.events()))
    assert replayed.state == classic.state
    assert replayed.history(CHURN) == classic.history(CHURN)


def test_reload_sees_events_appended_by_another_writer() -> None:
    store = InMemoryRegistryStore()
    reader = ModelRegistry(store, clock=TickingClock())
    writer = ModelRegistry(store, clock=TickingClock())
    writer.register("m", "1.0.0", {}, "p")
    assert reader.models() == []
    reader.reload()
    assert reader.models() == ["m"]


def test_clock_must_be_timezone_aware() -> None:
    registry = ModelRegistry(clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(RegistryError, match="timezone-aware"):
        registry.register("m", "1.0.0", {}, "p")
    assert registry.store.events() == []


@settings(max_examples=100, deadline=None)
@given(operations=registry_operations())
def test_replaying_the_log_rebuilds_the_state(operations: list[tuple[Any, ...]]) -> None:
    registry = ModelRegistry(clock=TickingClock())
    accepted = run_operations(registry, operations)
    events = registry.store.events()
    assert len(events) == accepted  # refusals wrote nothing
    assert fold(events) == registry.state
    replayed = ModelRegistry(InMemoryRegistryStore(events), clock=TickingClock())
    assert replayed.state == registry.state
    for name in registry.models():
        assert replayed.versions(name) == registry.versions(name)
        assert replayed.production(name) == registry.production(name)
        assert replayed.history(name) == registry.history(name)
