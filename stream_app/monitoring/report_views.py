"""What the report pages show, folded from the messages a worker follows.

Every worker follows the drift-reports topic itself, so any worker can answer
/reports/drift: :class:`DriftReportsView` keeps the latest report per model and the
most recent ones, and ignores a report it already holds (a repeat after a crash).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DriftReportsView"]


@dataclass(frozen=True)
class DriftReportsView:
    """The latest drift report per model and the ``keep`` most recent, newest first.

    "Latest" and "recent" go by the window's end (event time), not by arrival.

    Example:
        >>> def report(model, end, severity="none"):
        ...     return {"window_id": f"{model}|{end}", "model_name": model,
        ...             "window_end": end, "severity": severity}
        >>> view = DriftReportsView(keep=2)
        >>> for r in (report("m", "T02"), report("m", "T01"), report("m", "T03", "warning")):
        ...     view = view.add(r)
        >>> view.latest["m"]["window_end"], [r["window_end"] for r in view.recent]
        ('T03', ['T03', 'T02'])
        >>> view.add(report("m", "T03", "warning")) == view
        True
        >>> small = DriftReportsView(max_models=2)
        >>> for r in (report("a", "T01"), report("b", "T02"), report("c", "T03")):
        ...     small = small.add(r)
        >>> sorted(small.latest)  # the model with the oldest window went
        ['b', 'c']
    """

    keep: int = 50
    latest: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    recent: tuple[Mapping[str, Any], ...] = ()
    # At most this many models in ``latest``: past it, the one with the oldest window goes.
    max_models: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1:
            raise ValueError(f"keep must be an integer in [1, inf), got {self.keep!r}")

    def add(self, report: Mapping[str, Any]) -> DriftReportsView:
        """The view with ``report`` (a drift-reports message) in it."""
        window_id = report["window_id"]
        if any(r["window_id"] == window_id for r in self.recent):
            return self
        latest = dict(self.latest)
        model = str(report["model_name"])
        current = latest.get(model)
        if current is None or str(report["window_end"]) >= str(current["window_end"]):
            latest[model] = report
        while len(latest) > self.max_models:
            del latest[min(latest, key=lambda m: str(latest[m]["window_end"]))]
        ordered = sorted(
            (*self.recent, report), key=lambda r: (str(r["window_end"]), r["window_id"])
        )
        recent = tuple(reversed(ordered))[: self.keep]
        return DriftReportsView(self.keep, latest, recent, self.max_models)

    def to_dict(self) -> dict[str, Any]:
        """The /reports/drift page."""
        return {"latest": dict(self.latest), "recent": list(self.recent)}
