"""Registry events, semantic-version order and the fold's refusal of impossible logs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from stream_app.errors import RegistryError
from stream_app.lifecycle.registry_state import (
    RegistryBuilder,
    RegistryEvent,
    RegistryState,
    apply,
    fold,
    semver_key,
)
from tests.utils.lifecycle import START


def registered(version: str, name: str = "m", **payload: Any) -> RegistryEvent:
    return RegistryEvent("registered", name, version, START, {"path": "p", **payload})


def promoted(version: str, previous: str | None) -> RegistryEvent:
    return RegistryEvent("promoted", "m", version, START, {"previous": previous})


def rolled_back(version: str, previous: str) -> RegistryEvent:
    return RegistryEvent("rolled_back", "m", version, START, {"previous": previous})


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.9.0", "1.10.0"),
        ("1.0.9", "1.0.10"),
        ("0.99.99", "1.0.0"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "1.0.0-beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-beta.11", "1.0.0-rc.1"),
        ("1.0.0-rc.1", "1.0.0"),
    ],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    assert semver_key(lower) < semver_key(higher)


@pytest.mark.parametrize(
    "bad", ["1", "1.0", "1.0.0.0", "v1.0.0", "1.0.0+sha.1", "1.01.0", "1.0.0-", "1.0.0-01", ""]
)
def test_semver_rejects(bad: str) -> None:
    with pytest.raises(RegistryError, match="not a semantic version"):
        semver_key(bad)


def test_event_json_round_trip_is_exact() -> None:
    event = RegistryEvent(
        "registered",
        "churn",
        "1.1.0",
        START + timedelta(microseconds=123456),
        {"metrics": {"accuracy": 0.1 + 0.2, "f1": 1e-300}, "path": "p", "tags": {"a": "b"}},
    )
    line = event.to_json()
    assert "\n" not in line
    assert RegistryEvent.from_json(line) == event
    assert RegistryEvent.from_json(line.encode()) == event
    assert json.loads(line)["at"] == "2026-01-01T00:00:00.123456+00:00"


def test_event_time_is_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = RegistryEvent("registered", "m", "1.0.0", datetime(2026, 1, 1, 2, tzinfo=plus_two), {})
    assert event.at == START
    assert event.at.tzinfo is not None and event.at.utcoffset() == timedelta(0)


def test_payload_is_copied_and_made_json_native() -> None:
    tags = {"owner": "risk"}
    event = RegistryEvent("registered", "m", "1.0.0", START, {"tags": tags, "pair": (1, 2)})
    tags["owner"] = "changed"
    assert event.payload == {"tags": {"owner": "risk"}, "pair": [1, 2]}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "deleted"}, "event kind must be one of"),
        ({"name": ""}, "event name must be a non-empty string"),
        ({"version": "latest"}, "not a semantic version"),
        ({"at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"payload": {"x": float("nan")}}, "not JSON-safe"),
        ({"payload": {"x": object()}}, "not JSON-safe"),
    ],
)
def test_event_validation(kwargs: dict[str, Any], fragment: str) -> None:
    fields: dict[str, Any] = {
        "kind": "registered",
        "name": "m",
        "version": "1.0.0",
        "at": START,
        "payload": {},
    }
    with pytest.raises(RegistryError, match=fragment):
        RegistryEvent(**{**fields, **kwargs})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"kind": "registered"}',
        '{"kind":"registered","name":"m","version":"1.0.0","at":"yesterday","payload":{}}',
    ],
)
def test_from_json_refuses_non_events(text: str) -> None:
    with pytest.raises(RegistryError, match="not a registry event"):
        RegistryEvent.from_json(text)


def test_fold_builds_the_state() -> None:
    state = fold(
        [
            registered("1.0.0", metrics={"accuracy": 0.85}, digest="d1"),
            registered("1.1.0", metrics={"accuracy": 0.88}, directions={"accuracy": "higher"}),
            promoted("1.0.0", None),
            promoted("1.1.0", "1.0.0"),
            rolled_back("1.0.0", "1.1.0"),
        ]
    )
    record = state.models["m"]
    assert record.production == "1.0.0"
    assert record.lineage == ("1.0.0",)
    assert [c.kind for c in record.history] == ["promoted", "promoted", "rolled_back"]
    assert record.versions["1.0.0"].digest == "d1"
    assert record.versions["1.1.0"].directions == {"accuracy": "higher"}


@pytest.mark.parametrize(
    ("events", "fragment"),
    [
        ([registered("1.0.0"), registered("1.0.0")], "event 1 (registered m 1.0.0): m 1.0.0 is"),
        ([promoted("1.0.0", None)], "unknown version 1.0.0 of 'm'"),
        ([registered("1.0.0"), promoted("1.0.0", "0.9.0")], "previous '0.9.0' is not production"),
        (
            [
                registered("1.0.0"),
                registered("1.1.0"),
                promoted("1.0.0", None),
                rolled_back("1.1.0", "1.0.0"),
            ],
            "rollback target is not the previous production version",
        ),
        (
            [
                registered("1.0.0"),
                registered("1.1.0"),
                promoted("1.0.0", None),
                promoted("1.1.0", "1.0.0"),
                rolled_back("1.0.0", "1.0.0"),
            ],
            "previous '1.0.0' is not production '1.1.0'",
        ),
        ([registered("1.0.0", metrics={"a": "high"})], "metric 'a' must be a finite number"),
        ([registered("1.0.0", directions={"a": "up"})], "'higher' or 'lower'"),
        ([registered("1.0.0", tags=["a"])], "payload 'tags' must be an object"),
    ],
)
def test_fold_refuses_impossible_logs(events: list[RegistryEvent], fragment: str) -> None:
    with pytest.raises(RegistryError) as info:
        fold(events)
    assert fragment in str(info.value)


def test_a_refused_event_changes_nothing_in_the_builder() -> None:
    builder = RegistryBuilder()
    builder.apply(registered("1.0.0"))
    builder.apply(promoted("1.0.0", None))
    before = builder.state()
    for bad in (
        registered("1.1.0", metrics={"a": "high"}),  # refused after the version was named
        registered("1.0.0"),
        promoted("2.0.0", "1.0.0"),
        rolled_back("1.0.0", "1.0.0"),
        RegistryEvent("promoted", "other", "1.0.0", START, {"previous": None}),
    ):
        with pytest.raises(RegistryError):
            builder.apply(bad)
    assert builder.state() == before
    assert list(before.models) == ["m"]  # an unknown model's failed event adds no record


def test_a_state_taken_midway_is_not_changed_by_later_events() -> None:
    builder = RegistryBuilder()
    builder.apply(registered("1.0.0"))
    midway = builder.state()
    builder.apply(registered("1.1.0"))
    builder.apply(promoted("1.1.0", None))
    assert list(midway.models["m"].versions) == ["1.0.0"]
    assert midway.models["m"].production is None
    assert builder.state().models["m"].production == "1.1.0"


def test_the_builder_folds_a_long_log_like_fold_and_apply() -> None:
    log: list[RegistryEvent] = []
    production = None
    for minor in range(60):
        version = f"1.{minor}.0"
        log.append(registered(version, metrics={"accuracy": minor / 100}))
        log.append(promoted(version, production))
        production = version
    log.append(rolled_back("1.58.0", "1.59.0"))
    one_by_one = RegistryState(models={})
    for event in log:
        one_by_one = apply(one_by_one, event)
    builder = RegistryBuilder()
    for event in log:
        builder.apply(event)
    assert builder.state() == fold(log) == one_by_one
    assert one_by_one.models["m"].production == "1.58.0"
    assert len(one_by_one.models["m"].history) == 61  # 60 promotions and the rollback
