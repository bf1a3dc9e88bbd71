"""The model panel's input, read from the registry page's dict (the one place that knows it).

:func:`model_panel` takes what the worker's registry follower reports (``/registry``:
production, challenger, versions, the production history) and the bundles it refused,
and gives the versions serving and one timeline: registered, promoted, rolled back,
refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ModelEvent", "ModelPanel", "model_panel"]


@dataclass(frozen=True)
class ModelEvent:
    """One step of a model's life: ``kind`` registered, promoted, rolled_back or refused."""

    at: datetime
    kind: str
    version: str


@dataclass(frozen=True)
class ModelPanel:
    """The versions serving and the timeline, oldest first."""

    model: str
    production: str | None
    challenger: str | None
    events: tuple[ModelEvent, ...]


def model_panel(
    registry: Mapping[str, Any] | None, refused: Sequence[Mapping[str, Any]] = ()
) -> ModelPanel | None:
    """The panel of ``registry`` (the /registry dict) and ``refused`` ({version, at}).

    Example:
        >>> page = {"model": "m", "production": "1.0.0", "challenger": None,
        ...         "versions": [{"version": "1.0.0", "registered_at": "2026-03-02T10:00:00"}],
        ...         "history": [{"kind": "promoted", "version": "1.0.0",
        ...                      "at": "2026-03-02T10:05:00"}]}
        >>> [(e.kind, e.version) for e in model_panel(page).events]
        [('registered', '1.0.0'), ('promoted', '1.0.0')]
        >>> model_panel(None) is None
        True
    """
    if registry is None:
        return None
    events = [
        ModelEvent(datetime.fromisoformat(v["registered_at"]), "registered", str(v["version"]))
        for v in registry.get("versions", ())
        if v.get("registered_at")
    ]
    events += [
        ModelEvent(datetime.fromisoformat(h["at"]), str(h["kind"]), str(h["version"]))
        for h in registry.get("history", ())
    ]
    events += [
        ModelEvent(datetime.fromisoformat(r["at"]), "refused", str(r["version"])) for r in refused
    ]
    production, challenger = registry.get("production"), registry.get("challenger")
    return ModelPanel(
        model=str(registry.get("model", "?")),
        production=None if production is None else str(production),
        challenger=None if challenger is None else str(challenger),
        events=tuple(sorted(events, key=lambda e: (e.at.timestamp(), e.kind))),
    )
