"""The drift reports view: latest per model by event time, recent bounded, repeats ignored."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.monitoring.report_views import DriftReportsView


def _report(model: str, hour: int, severity: str = "none") -> dict[str, Any]:
    end = f"2026-03-02T{hour:02d}:00:00+00:00"
    return {"window_id": f"{model}|1.0.0|ref|{end}", "model_name": model, "window_end": end,
            "severity": severity}  # fmt: skip


def test_latest_per_model_goes_by_window_end_and_recent_is_bounded() -> None:
    view = DriftReportsView(keep=3)
    for report in (_report("a", 10), _report("b", 9), _report("a", 12, "warning"),
                   _report("a", 11), _report("b", 13)):  # fmt: skip
        view = view.add(report)
    assert {m: r["window_end"][11:13] for m, r in view.latest.items()} == {"a": "12", "b": "13"}
    assert [(r["model_name"], r["window_end"][11:13]) for r in view.recent] == [
        ("b", "13"),
        ("a", "12"),
        ("a", "11"),
    ]
    assert view.to_dict()["latest"]["a"]["severity"] == "warning"


def test_a_repeated_report_changes_nothing() -> None:
    view = DriftReportsView().add(_report("a", 10))
    assert view.add(_report("a", 10)) == view


@pytest.mark.parametrize("keep", [0, -1, True])
def test_keep_must_be_a_positive_integer(keep: int) -> None:
    with pytest.raises(ValueError, match="keep must be"):
        DriftReportsView(keep=keep)
