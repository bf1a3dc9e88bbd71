"""The A/B panel's input, read from ab-reports messages (the one place that knows their shape).

:func:`ab_panel` takes the messages of every interval and keeps the newest experiment
(model and version pair): conversion per variant with its 95 % Wilson interval, the
p-value the decision uses against alpha, the sample-ratio check, and the newest
recommendation with the reason for it in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stream_app.monitoring.ab_test import AB_ALPHA, SRM_ALPHA

__all__ = ["ABPanel", "ABPoint", "ab_panel", "why", "wilson"]

_Z95 = 1.959964


def wilson(conversions: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a conversion rate.

    Example:
        >>> [round(x, 3) for x in wilson(10, 100)]
        [0.055, 0.174]
        >>> wilson(0, 0)
        (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p = conversions / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ABPoint:
    """One interval's cumulative report."""

    at: datetime
    rate_a: float
    rate_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    p_value: float
    srm_p_value: float | None


@dataclass(frozen=True)
class ABPanel:
    """The newest experiment's reports, oldest first, and its current verdict."""

    model: str
    serving_version: str
    challenger_version: str
    points: tuple[ABPoint, ...]
    decided_by: str
    recommendation: str
    why: str
    alpha: float = AB_ALPHA
    srm_alpha: float = SRM_ALPHA


def _point(message: Mapping[str, Any]) -> ABPoint:
    r = message["report"]
    decided = r.get("decided_by", "chi2")
    p = r["sequential_p_value"] if decided == "sequential" else r["p_value"]
    srm = r.get("srm_p_value")
    return ABPoint(
        at=datetime.fromisoformat(message["interval_end"]),
        rate_a=float(r["conversion_rate_a"]),
        rate_b=float(r["conversion_rate_b"]),
        interval_a=wilson(int(r["conversions_a"]), int(r["n_a"])),
        interval_b=wilson(int(r["conversions_b"]), int(r["n_b"])),
        p_value=float(p),
        srm_p_value=None if srm is None else float(srm),
    )


def why(report: Mapping[str, Any], alpha: float = AB_ALPHA) -> str:
    """The newest recommendation's reason, in words.

    Example:
        >>> why({"recommendation": "continue", "conversion_rate_a": 0.1,
        ...      "conversion_rate_b": 0.12, "p_value": 0.2, "decided_by": "chi2"})
        'B converts better (12.00 % against 10.00 %) but p = 0.2 is not below alpha 0.05 yet'
    """
    rec = report.get("recommendation", "?")
    a, b = float(report.get("conversion_rate_a", 0.0)), float(report.get("conversion_rate_b", 0.0))
    decided = report.get("decided_by", "chi2")
    p = report.get("sequential_p_value" if decided == "sequential" else "p_value")
    rates = f"({b:.2%} against {a:.2%})".replace("%", " %")
    increase = report.get("latency_increase_pct")
    latency = "unknown" if increase is None else f"{increase:+.0f} %"
    if rec == "invalid":
        return (f"the split is broken: sample-ratio p = {report.get('srm_p_value', 0):.2g} "
                f"is below {SRM_ALPHA}")  # fmt: skip
    if rec == "keep_a":
        return f"B converts no better than A {rates}"
    if rec == "continue":
        return f"B converts better {rates} but p = {p:.3g} is not below alpha {alpha} yet"
    if rec == "use_b":
        return f"B converts better {rates}, p = {p:.3g} < {alpha}, latency {latency} within bounds"
    if rec == "review_b":
        return f"B converts better {rates}, p = {p:.3g} < {alpha}, but latency is {latency}"
    return str(rec)


def ab_panel(messages: Sequence[Mapping[str, Any]]) -> ABPanel | None:
    """The newest experiment in ``messages`` (ab-reports values); None without any."""
    if not messages:
        return None
    newest = max(messages, key=lambda m: str(m["interval_end"]))
    pair = (newest["model"], newest.get("serving_version"), newest.get("challenger_version"))
    same = [
        m for m in messages
        if (m["model"], m.get("serving_version"), m.get("challenger_version")) == pair
    ]  # fmt: skip
    ordered = sorted(same, key=lambda m: str(m["interval_end"]))
    report = newest["report"]
    return ABPanel(
        model=str(newest["model"]),
        serving_version=str(newest.get("serving_version")),
        challenger_version=str(newest.get("challenger_version")),
        points=tuple(_point(m) for m in ordered),
        decided_by=str(report.get("decided_by", "chi2")),
        recommendation=str(report.get("recommendation", "?")),
        why=why(report),
    )
