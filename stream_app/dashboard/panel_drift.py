"""The drift panel's input, read from drift-reports messages (the one place that knows their shape).

:func:`drift_panel` lays the newest model's windows out as a grid, feature by window, of
severities (0 none, 1 warning, 2 critical; -1 not tested) and p-values, and picks the
window to show side by side: the worst one (the newest of equals) that carries its most
drifted feature's shares (``distribution``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream_app.monitoring.drift_report import SEVERITY_RANK

__all__ = ["Distribution", "DriftPanel", "drift_panel"]

_RANK: dict[str, int] = {str(name): rank for name, rank in SEVERITY_RANK.items()}


@dataclass(frozen=True)
class Distribution:
    """One feature's shares per bin in the reference and in one window."""

    feature: str
    window: str
    bins: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class DriftPanel:
    """Windows (their starts, oldest first) by features, and the distribution to show."""

    model: str
    windows: tuple[str, ...]
    features: tuple[str, ...]
    severity: tuple[tuple[int, ...], ...]  # [feature][window]
    p_values: tuple[tuple[float | None, ...], ...]
    focus: Distribution | None


def _p(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _focus(ordered: Sequence[Mapping[str, Any]]) -> Distribution | None:
    shown = [m for m in ordered if isinstance(m.get("distribution"), Mapping)]
    if not shown:
        return None
    worst = max(reversed(shown), key=lambda m: _RANK.get(str(m.get("severity")), 0))
    d = worst["distribution"]
    return Distribution(
        feature=str(d["feature"]),
        window=str(worst.get("window_start")),
        bins=tuple(str(b) for b in d["bins"]),
        reference=tuple(float(x) for x in d["reference"]),
        current=tuple(float(x) for x in d["current"]),
    )


def drift_panel(messages: Sequence[Mapping[str, Any]]) -> DriftPanel | None:
    """The newest model's windows in ``messages`` (drift-reports values); None without any.

    Example:
        >>> def window(start, severity):
        ...     return {"model_name": "m", "window_start": start, "window_end": start + "+1h",
        ...             "severity": severity,
        ...             "features": {"age": {"severity": severity, "p_value": 0.01}}}
        >>> panel = drift_panel([window("T2", "critical"), window("T1", "none")])
        >>> panel.windows, panel.features, panel.severity
        (('T1', 'T2'), ('age',), ((0, 2),))
    """
    if not messages:
        return None
    newest = max(messages, key=lambda m: str(m["window_end"]))
    model = newest["model_name"]
    ordered = sorted(
        (m for m in messages if m["model_name"] == model), key=lambda m: str(m["window_end"])
    )
    features = tuple(sorted({name for m in ordered for name in m.get("features", {})}))
    severity, p_values = [], []
    for name in features:
        cells = [m.get("features", {}).get(name) for m in ordered]
        severity.append(tuple(-1 if c is None else _RANK.get(str(c.get("severity")), 0)
                              for c in cells))  # fmt: skip
        p_values.append(tuple(None if c is None else _p(c.get("p_value")) for c in cells))
    return DriftPanel(
        model=str(model),
        windows=tuple(str(m.get("window_start")) for m in ordered),
        features=features,
        severity=tuple(severity),
        p_values=tuple(p_values),
        focus=_focus(ordered),
    )
