"""Which verified bundles score right now, swapped whole between micro-batches.

The registry follower (agents/registry.py) installs a new :class:`Serving` when the
registry's production or challenger version changes; the scoring agent takes one
snapshot per micro-batch, so a batch is scored by one model set from start to end and a
swap never loses or splits an in-flight batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stream_app.inference.score import BatchScorer, ScoringBundle
from stream_app.monitoring.batch_summary import check_reference

__all__ = ["Refusal", "Serving", "ServingModels"]


@dataclass(frozen=True)
class Serving:
    """The production bundle (variant A) and the challenger (variant B), when there is one.

    ``b_share`` is 0 without a challenger (or when the challenger is the production
    version), so every user then gets variant A.
    """

    production: ScoringBundle
    challenger: ScoringBundle | None
    scorers: Mapping[str, BatchScorer]
    b_share: float

    @property
    def production_version(self) -> str:
        return str(self.production.metadata["version"])

    @property
    def challenger_version(self) -> str | None:
        if self.challenger is None:
            return None
        return str(self.challenger.metadata["version"])


@dataclass(frozen=True)
class Refusal:
    """A version the worker refused to serve, and why (shown by /health)."""

    version: str
    reason: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ServingModels:
    """The worker's current :class:`Serving`, plus the last refusal.

    Example:
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> from sklearn.dummy import DummyClassifier
        >>> from stream_app.inference.features import FEATURE_NAMES
        >>> def bundle(version):
        ...     model = DummyClassifier().fit(np.zeros((2, 10)), [0, 1])
        ...     meta = {"name": "m", "version": version, "features": list(FEATURE_NAMES)}
        ...     return SimpleNamespace(model=model, metadata=meta)
        >>> models = ServingModels(b_share=0.5)
        >>> models.current is None
        True
        >>> models.install(bundle("1.0.0"), None).b_share
        0.0
        >>> serving = models.install(bundle("1.0.0"), bundle("1.1.0"))
        >>> sorted(serving.scorers), serving.b_share, serving.challenger_version
        (['A', 'B'], 0.5, '1.1.0')
    """

    def __init__(
        self, *, b_share: float, threshold: float = 0.5, clock: Callable[[], float] = time.time
    ) -> None:
        if not 0.0 < b_share < 1.0:
            raise ValueError(f"b_share must be strictly between 0 and 1, got {b_share!r}")
        self.b_share = b_share
        self.threshold = threshold
        # The worker's wall clock (epoch seconds), by which predictions' latencies end
        # (and, where the producers choose the Kafka timestamps, start).
        self.clock = clock
        self.current: Serving | None = None
        self.refused: Refusal | None = None
        # Warnings of the bundles serving now, by version (unsigned, another scikit-learn).
        self.bundle_warnings: dict[str, tuple[str, ...]] = {}
        self._loaded: asyncio.Event | None = None

    def install(self, production: ScoringBundle, challenger: ScoringBundle | None) -> Serving:
        """Build scorers for the bundles and make them current; raises if one cannot score.

        Nothing changes when a scorer cannot be built (FeatureMismatchError, ValueError),
        or when the production bundle's reference profile does not fit the drift columns.
        """
        check_reference(production.metadata.get("reference_profile"))
        scorers: dict[str, BatchScorer] = {
            "A": BatchScorer(production, variant="A", threshold=self.threshold, clock=self._now)
        }
        versions_differ = challenger is not None and (
            challenger.metadata["version"] != production.metadata["version"]
        )
        if challenger is not None and versions_differ:
            scorers["B"] = BatchScorer(
                challenger, variant="B", threshold=self.threshold, clock=self._now
            )
        serving = Serving(
            production,
            challenger if versions_differ else None,
            scorers,
            self.b_share if "B" in scorers else 0.0,
        )
        self.current = serving
        if self._loaded is not None:
            self._loaded.set()
        return serving

    def _now(self) -> float:
        return self.clock()  # read late: a test may set the clock after install

    def refuse(self, version: str, reason: str) -> None:
        """Record that ``version`` was refused; the current set keeps serving."""
        self.refused = Refusal(version, reason)

    async def wait_loaded(self) -> Serving:
        """The current set, waiting for the first install if there is none yet."""
        while self.current is None:
            if self._loaded is None:
                self._loaded = asyncio.Event()
            await self._loaded.wait()
        return self.current

    def status(self) -> dict[str, Any]:
        """The model component of /health: loaded, versions, the last refusal."""
        current = self.current
        report: dict[str, Any] = {
            "loaded": current is not None,
            "production": None if current is None else current.production_version,
            "challenger": None if current is None else current.challenger_version,
        }
        if current is None:
            report["error"] = "no verified model loaded yet"
        if self.refused is not None:
            report["refused"] = {
                "version": self.refused.version,
                "reason": self.refused.reason,
                "at": self.refused.at.isoformat(),
            }
        return report
