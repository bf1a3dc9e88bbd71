"""Health and readiness: the classic cases, every mapping shape, missing components."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stream_app.monitoring.health import (
    ComponentStatus,
    evaluate_health,
    evaluate_readiness,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
CLASSIC_CRITICAL = ("model", "database")


def test_classic_cache_down_is_degraded() -> None:
    report = evaluate_health(
        {
            "model": {"loaded": True},
            "database": {"connected": True},
            "cache": {"available": False, "error": "Connection timeout"},
        },
        critical=CLASSIC_CRITICAL,
        now=NOW,
    )
    assert report.status == "degraded"
    assert report.http_status == 200
    assert report.critical_failures == ()
    assert report.non_critical_failures == ("cache",)
    cache = report.components["cache"]
    assert cache.status == "down"
    assert cache.error == "Connection timeout"
    assert cache.critical is False
    assert cache.checked_at == NOW
    assert cache.observed == {"available": False}


def test_classic_database_down_is_unhealthy() -> None:
    report = evaluate_health(
        {
            "model": {"loaded": True},
            "database": {"connected": False},
            "cache": {"available": False, "error": "Connection timeout"},
        },
        critical=CLASSIC_CRITICAL,
        now=NOW,
    )
    assert report.status == "unhealthy"
    assert report.http_status == 503
    assert report.critical_failures == ("database",)
    assert report.non_critical_failures == ("cache",)
    assert report.components["database"].error == "reported down"
    assert report.components["database"].critical is True


def test_all_up_is_healthy() -> None:
    report = evaluate_health({"model": {"loaded": True}, "kafka": {"connected": True}}, now=NOW)
    assert report.status == "healthy"
    assert report.http_status == 200
    assert report.critical_failures == report.non_critical_failures == ()
    assert all(c.up and c.error is None for c in report.components.values())


@pytest.mark.parametrize(
    ("reported", "up"),
    [
        ({"loaded": True}, True),
        ({"loaded": False}, False),
        ({"connected": True}, True),
        ({"connected": False}, False),
        ({"available": True}, True),
        ({"available": False, "error": "x"}, False),
        ({"healthy": True}, True),
        ({"healthy": False}, False),
        ({"up": True}, True),
        ({"up": False}, False),
        ({"status": "up"}, True),
        ({"status": "down"}, False),
        ({"connected": True, "loaded": False}, False),  # every flag present must hold
        ({"connected": True, "lag": 12}, True),  # extra observed values are carried along
    ],
)
def test_mapping_flags(reported: dict[str, Any], up: bool) -> None:
    status = evaluate_health({"model": reported}, critical=("model",), now=NOW).components["model"]
    assert status.up is up
    assert (status.error is None) is up


@pytest.mark.parametrize(
    ("reported", "error_fragment"),
    [
        ({}, "unrecognised report"),
        ({"ok": True}, "unrecognised report"),
        ({"loaded": "yes"}, "'loaded' must be true or false, got str"),
        ({"connected": 1}, "'connected' must be true or false, got int"),
        ({"status": "fine"}, "'status' must be 'up' or 'down'"),
        (True, "expected a ComponentStatus or a mapping, got bool"),
        (None, "expected a ComponentStatus or a mapping, got NoneType"),
    ],
)
def test_unreadable_shapes_are_failures_not_exceptions(reported: Any, error_fragment: str) -> None:
    report = evaluate_health({"model": reported, "kafka": {"connected": True}}, now=NOW)
    model = report.components["model"]
    assert model.status == "down"
    assert model.error is not None and error_fragment in model.error
    assert report.status == "unhealthy"
    json.dumps(report.to_dict())


def test_unreadable_non_critical_component_only_degrades() -> None:
    report = evaluate_health(
        {"model": {"loaded": True}, "kafka": {"connected": True}, "sink": {"weird": 1}}, now=NOW
    )
    assert report.status == "degraded"
    assert report.non_critical_failures == ("sink",)


def test_missing_critical_component_is_a_failure_with_detail() -> None:
    report = evaluate_health({"model": {"loaded": True}}, now=NOW)
    assert report.status == "unhealthy"
    assert report.critical_failures == ("kafka",)
    kafka = report.components["kafka"]
    assert kafka.status == "down"
    assert kafka.critical is True
    assert kafka.error == "critical component did not report"


def test_component_status_objects_and_their_critical_flag() -> None:
    registry = ComponentStatus("registry", "down", observed=3, error="lagging", critical=True)
    report = evaluate_health(
        {
            "model": ComponentStatus("model", "up", observed="1.1.0", checked_at=EARLIER),
            "kafka": {"connected": True},
            "registry": registry,
        },
        now=NOW,
    )
    # The component's own critical flag counts even when it is not in `critical`.
    assert report.status == "unhealthy"
    assert report.critical_failures == ("registry",)
    assert report.components["model"].checked_at == EARLIER
    assert report.components["registry"].checked_at == NOW
    assert report.components["model"].critical is True


def test_mapping_checked_at_wins_over_now() -> None:
    report = evaluate_health(
        {"model": {"loaded": True, "checked_at": EARLIER}}, ("model",), now=NOW
    )
    assert report.components["model"].checked_at == EARLIER
    assert report.checked_at == NOW


def test_without_now_times_stay_empty() -> None:
    report = evaluate_health({"model": {"loaded": True}, "kafka": {"connected": True}})
    assert report.checked_at is None
    assert report.components["model"].checked_at is None


def test_to_dict_is_json_safe_and_complete() -> None:
    report = evaluate_health(
        {
            "model": {"loaded": True, "version": "1.1.0"},
            "kafka": {"connected": True, "lag": float("inf"), "since": EARLIER},
            "cache": {"available": False, "error": ValueError("boom")},
        },
        now=NOW,
    )
    body = json.loads(json.dumps(report.to_dict()))
    assert body["status"] == "degraded"
    assert body["http_status"] == 200
    assert body["checked_at"] == "2026-01-01T12:00:00+00:00"
    assert body["non_critical_failures"] == ["cache"]
    assert body["components"]["cache"]["error"] == "boom"
    assert body["components"]["kafka"]["observed"] == {
        "connected": True,
        "lag": "inf",
        "since": "2026-01-01T11:59:00+00:00",
    }
    assert body["components"]["model"]["critical"] is True


def test_component_status_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="'up' or 'down'"):
        ComponentStatus("model", "UP")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("partitions", "tables", "model", "reasons"),
    [
        (True, True, True, ()),
        (False, True, True, ("no partitions assigned yet",)),
        (True, False, True, ("tables not recovered from their changelogs yet",)),
        (True, True, False, ("no verified model loaded",)),
        (
            False,
            False,
            False,
            (
                "no partitions assigned yet",
                "tables not recovered from their changelogs yet",
                "no verified model loaded",
            ),
        ),
    ],
)
def test_readiness(partitions: bool, tables: bool, model: bool, reasons: tuple[str, ...]) -> None:
    report = evaluate_readiness(partitions, tables, model)
    assert report.reasons == reasons
    assert report.ready is (not reasons)
    assert report.http_status == (200 if not reasons else 503)
    assert json.loads(json.dumps(report.to_dict()))["reasons"] == list(reasons)


def test_mapping_key_names_the_component() -> None:
    report = evaluate_health({"model": ComponentStatus("scorer", "up"), "kafka": {"up": True}})
    assert report.components["model"].name == "model"
    assert report.status == "healthy"


@pytest.mark.parametrize(("loaded", "status"), [(True, "degraded"), (False, "unhealthy")])
def test_a_bare_string_names_one_critical_component(loaded: bool, status: str) -> None:
    report = evaluate_health(
        {"model": {"loaded": loaded}, "cache": {"available": False}}, critical="model", now=NOW
    )
    assert report.status == status
    assert set(report.components) == {"model", "cache"}  # no "m", "o", "d", "e", "l"
    assert report.components["model"].critical is True
    assert report.critical_failures == (() if loaded else ("model",))
    assert report.non_critical_failures == ("cache",)
