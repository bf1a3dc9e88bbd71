"""Charts of the published reports as inline SVG: A/B, drift and alerts (see ``plots``)."""

from __future__ import annotations

from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch

from stream_app.dashboard.panel_ab import ABPanel
from stream_app.dashboard.panel_alerts import AlertsPanel
from stream_app.dashboard.panel_drift import DriftPanel
from stream_app.dashboard.plots import (
    COLOURS,
    DRAW_LOCK,
    empty,
    figure,
    svg,
    time_axis,
    x_times,
)

__all__ = [
    "EMPTY_AB",
    "EMPTY_ALERTS",
    "EMPTY_DRIFT",
    "ab_charts",
    "alerts_charts",
    "drift_charts",
]

EMPTY_AB = "no A/B report yet: needs a challenger and outcomes"
EMPTY_DRIFT = (
    "no drift report yet: a window is reported once it closes (STREAM_DRIFT_WINDOW_SECONDS "
    "of event time, then the grace)"
)
EMPTY_ALERTS = "no alert yet: no rule has fired"
# Not tested, none, warning, critical.
_SEVERITY_COLOURS = ("#d9d9d9", "#8fd19e", "#f5c26b", "#e0604f")
_SEVERITY_NAMES = ("not tested", "none", "warning", "critical")
_KIND_MARKERS = {"firing": "o", "escalated": "^", "deescalated": "v", "resolved": "s"}


def ab_charts(panel: ABPanel | None) -> list[str]:
    """Conversion per variant with its 95 % interval; the p-value against alpha and the
    sample-ratio check's p-value against its own threshold (log scale)."""
    if panel is None or not panel.points:
        return [empty(EMPTY_AB)]
    at = x_times([p.at for p in panel.points])
    with DRAW_LOCK:
        fig = figure()
        ax = fig.add_subplot()
        for arm, rates, bands in (
            ("A", [p.rate_a for p in panel.points], [p.interval_a for p in panel.points]),
            ("B", [p.rate_b for p in panel.points], [p.interval_b for p in panel.points]),
        ):
            version = panel.serving_version if arm == "A" else panel.challenger_version
            ax.fill_between(at, [lo for lo, _ in bands], [hi for _, hi in bands], alpha=0.2,
                            color=COLOURS[arm], gid=f"series-ab-interval-{arm}")  # fmt: skip
            ax.plot(at, rates, color=COLOURS[arm], marker=".", label=f"{arm} ({version})",
                    gid=f"series-ab-rate-{arm}")  # fmt: skip
        ax.set_ylabel("conversion")
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        time_axis(ax)
        ax.legend(fontsize=7, frameon=False)
        conversion = svg(fig, "ab-conversion")
        fig = figure(height=2.2)
        ax = fig.add_subplot()
        ax.plot(at, [max(p.p_value, 1e-12) for p in panel.points], marker=".",
                label=f"p-value ({panel.decided_by})", gid="series-ab-p")  # fmt: skip
        ax.axhline(panel.alpha, color="#c44e52", linestyle="--", label=f"alpha {panel.alpha}",
                   gid="series-ab-alpha")  # fmt: skip
        srm = [(t, p.srm_p_value) for t, p in zip(at, panel.points, strict=True)
               if p.srm_p_value is not None]  # fmt: skip
        if srm:
            ax.plot([t for t, _ in srm], [max(v, 1e-12) for _, v in srm], marker=".",
                    color="#937860", label="sample ratio p", gid="series-ab-srm")  # fmt: skip
            ax.axhline(panel.srm_alpha, color="#937860", linestyle=":",
                       label=f"ratio broken below {panel.srm_alpha}",
                       gid="series-ab-srm-alpha")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(top=1.5)
        time_axis(ax)
        ax.legend(fontsize=7, frameon=False, ncols=2)
        return [conversion, svg(fig, "ab-p")]


def drift_charts(panel: DriftPanel | None) -> list[str]:
    """Severity per feature and window as a heat map; the focus feature's distributions."""
    if panel is None or not panel.windows:
        return [empty(EMPTY_DRIFT)]
    charts = []
    with DRAW_LOCK:
        fig = figure(height=1.0 + 0.3 * len(panel.features))
        ax = fig.add_subplot()
        grid = [[level + 1 for level in row] for row in panel.severity]
        cmap = ListedColormap(list(_SEVERITY_COLOURS))
        norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], cmap.N)
        ax.pcolormesh(grid, cmap=cmap, norm=norm, edgecolors="white", linewidth=0.5,
                      gid="series-drift-severity")  # fmt: skip
        ax.set_yticks([i + 0.5 for i in range(len(panel.features))], panel.features, fontsize=7)
        step = max(1, len(panel.windows) // 8)
        ticks = range(0, len(panel.windows), step)
        ax.set_xticks([i + 0.5 for i in ticks], [panel.windows[i][5:16] for i in ticks],
                      fontsize=7)  # fmt: skip
        ax.set_xlabel(f"window start ({panel.model})")
        handles = [Patch(color=c, label=n) for c, n in zip(_SEVERITY_COLOURS, _SEVERITY_NAMES,
                                                            strict=True)]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7,
                   frameon=False)  # fmt: skip
        charts.append(svg(fig, "drift-heat"))
        focus = panel.focus
        if focus is not None:
            fig = figure(height=2.4)
            ax = fig.add_subplot()
            edges = list(range(len(focus.bins) + 1))
            ax.stairs(focus.reference, edges, fill=True, alpha=0.35, color=COLOURS["A"],
                      label="reference", gid="series-drift-reference")  # fmt: skip
            ax.stairs(focus.current, edges, linewidth=2, color=COLOURS["B"],
                      label=f"window from {focus.window[:16]}",
                      gid="series-drift-current")  # fmt: skip
            ax.set_xticks([i + 0.5 for i in range(len(focus.bins))], focus.bins, fontsize=7,
                          rotation=20)  # fmt: skip
            ax.set_ylabel("share")
            ax.set_title(f"{focus.feature}: reference against the window", fontsize=9)
            ax.legend(fontsize=7, frameon=False)
            charts.append(svg(fig, "drift-focus"))
    return charts


def alerts_charts(panel: AlertsPanel | None) -> list[str]:
    """One row per rule and service: episodes as bars, events as markers."""
    if panel is None or not panel.tracks:
        return [empty(EMPTY_ALERTS)]
    with DRAW_LOCK:
        fig = figure(height=1.0 + 0.45 * len(panel.tracks))
        ax = fig.add_subplot()
        last = max(m.at for t in panel.tracks for m in t.marks)
        day = 86_400.0
        labels = []
        for row, track in enumerate(panel.tracks):
            spans = [(float(x_times([start])[0]), ((end or last) - start).total_seconds() / day)
                     for start, end in track.episodes]  # fmt: skip
            ax.broken_barh(spans, (row - 0.3, 0.6), color="#f3b7ae",
                           gid=f"series-alerts-{row}-episodes")  # fmt: skip
            for kind, marker in _KIND_MARKERS.items():
                marks = x_times([m.at for m in track.marks if m.kind == kind])
                if marks.size:
                    ax.plot(marks, [row] * len(marks), linestyle="none", marker=marker,
                            color="#333333" if kind == "resolved" else "#c44e52",
                            label=kind if kind not in labels else None,
                            gid=f"series-alerts-{row}-{kind}")  # fmt: skip
                    labels.append(kind)
        ax.set_yticks(range(len(panel.tracks)),
                      [f"{t.rule} [{t.service}]" for t in panel.tracks], fontsize=7)  # fmt: skip
        ax.set_ylim(-0.6, len(panel.tracks) - 0.4)
        time_axis(ax)
        ax.legend(fontsize=7, frameon=False, ncols=4, loc="upper left")
        return [svg(fig, "alerts")]
