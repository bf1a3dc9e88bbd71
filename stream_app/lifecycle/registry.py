"""The model registry: versions with metrics, and a production alias that only moves
after a passing gate and only from the version the caller expected.

Every change is an event appended to a ``RegistryStore``; the registry's state is
``fold`` of those events, so replaying the store rebuilds it exactly.

Several registries (threads, processes, hosts) may write to one store. Each write
reads the store first, validates against that fresh state, and appends at the position
it read; if another writer appended in between, the store refuses with
``RegistryConflictError`` and nothing is written. So a stale caller is either checked
against what really happened (and refused by the compare-and-set when production
moved) or told to retry; the log never holds an event that contradicts it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from stream_app.errors import PromotionRefusedError, RegistryError
from stream_app.lifecycle.gate_report import GateReport
from stream_app.lifecycle.registry_checks import (
    check_current,
    check_gate_report,
    prefers_higher,
    registration_payload,
)
from stream_app.lifecycle.registry_signing import gate_digest
from stream_app.lifecycle.registry_state import (
    Direction,
    ModelRecord,
    ModelVersion,
    ProductionChange,
    RegistryEvent,
    RegistryState,
    apply,
    fold,
    semver_key,
)
from stream_app.lifecycle.registry_store import (
    InMemoryRegistryStore,
    JsonlRegistryStore,
    RegistryStore,
)

__all__ = [
    "Clock",
    "Direction",
    "EventCheck",
    "EventSigner",
    "InMemoryRegistryStore",
    "JsonlRegistryStore",
    "ModelRecord",
    "ModelRegistry",
    "ModelVersion",
    "ProductionChange",
    "RegistryEvent",
    "RegistryState",
    "RegistryStore",
    "fold",
    "semver_key",
    "utc_now",
]


class Clock(Protocol):
    """Gives the current time as a timezone-aware datetime."""

    def __call__(self) -> datetime: ...


# Signs an event before it is written (registry_signing.sign_event with a key and topic).
EventSigner = Callable[[RegistryEvent], RegistryEvent]
# Why an event read from the store is refused, or None (registry_signing.EventVerifier).
EventCheck = Callable[[RegistryEvent], str | None]


def utc_now() -> datetime:
    """The wall clock in UTC: the default registry clock (tests inject their own)."""
    return datetime.now(UTC)


class ModelRegistry:
    """Register versions, pick the best, promote and roll back, all as logged events.

    Example:
        >>> from stream_app.lifecycle.gate_report import GateCheck, ModelIdentity
        >>> registry = ModelRegistry(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
        >>> _ = registry.register("churn_predictor", "1.0.0", {"accuracy": 0.85}, "m/1.0.0")
        >>> _ = registry.register("churn_predictor", "1.1.0", {"accuracy": 0.88}, "m/1.1.0")
        >>> best = registry.best("churn_predictor", "accuracy")
        >>> gate = GateReport((GateCheck("accuracy", True, "0.88 >= 0.8"),), {},
        ...                   ModelIdentity("churn_predictor", best.version))
        >>> change = registry.promote("churn_predictor", best.version,
        ...                           expected_current=None, gate_report=gate)
        >>> change.version, change.previous, registry.production("churn_predictor")
        ('1.1.0', None, '1.1.0')
    """

    def __init__(
        self,
        store: RegistryStore | None = None,
        *,
        clock: Clock = utc_now,
        sign: EventSigner | None = None,
        check: EventCheck | None = None,
    ) -> None:
        """``sign`` signs every event written; with ``check``, an event read from the
        store that it refuses is left out of the state (as every verifying worker leaves
        it out) but still counts for the log's position; ``refused`` counts them."""
        self.store: RegistryStore = InMemoryRegistryStore() if store is None else store
        self._clock = clock
        self._sign = sign
        self._check = check
        self.refused = 0
        self._state = RegistryState(models={})
        self._position = 0
        self.reload()

    @property
    def state(self) -> RegistryState:
        """The folded state as of the last read of the store (a write or ``reload``)."""
        return self._state

    @property
    def position(self) -> int:
        """How many events of the store's log ``state`` is the fold of."""
        return self._position

    def reload(self) -> RegistryState:
        """Read the store again and fold the events other writers appended since.

        Reads (``production``, ``best``...) use the state as of the last reload or write;
        every write reloads first by itself.
        """
        events = self.store.events()
        if len(events) < self._position:
            raise RegistryError(
                f"the registry log has {len(events)} events, fewer than the "
                f"{self._position} already read: it is append-only"
            )
        new = events[self._position :]
        if self._check is not None:
            accepted = [e for e in new if self._check(e) is None]
            self.refused += len(new) - len(accepted)
            new = accepted
        self._state = fold(new, self._state, start=self._position)
        self._position = len(events)
        return self._state

    def register(
        self,
        name: str,
        version: str,
        metrics: Mapping[str, float],
        path: str | os.PathLike[str],
        *,
        digest: str | None = None,
        tags: Mapping[str, str] | None = None,
        directions: Mapping[str, Direction] | None = None,
    ) -> ModelVersion:
        """Record a new immutable version; RegistryError if it exists or is invalid.

        ``directions`` says, per metric, whether "higher" or "lower" is better (a
        bundle's ``metric_directions`` uses the same words and can be passed as is).
        """
        semver_key(version)
        if not isinstance(name, str) or not name:
            raise RegistryError("model name must be a non-empty string")
        payload = registration_payload(metrics, path, digest, tags, directions)
        self.reload()
        record = self._state.models.get(name)
        if record is not None and version in record.versions:
            raise RegistryError(f"{name} {version} is already registered; versions are immutable")
        self._write(RegistryEvent("registered", name, version, self._now(), payload))
        return self.get(name, version)

    def models(self) -> list[str]:
        """Every registered model name, sorted."""
        return sorted(self._state.models)

    def versions(self, name: str) -> list[str]:
        """The versions of ``name`` in semantic-version order (1.9.0 before 1.10.0)."""
        return sorted(self._record(name).versions, key=semver_key)

    def get(self, name: str, version: str) -> ModelVersion:
        """One registered version; RegistryError when unknown."""
        found = self._record(name).versions.get(version)
        if found is None:
            raise RegistryError(f"unknown version {version} of {name!r}")
        return found

    def best(
        self, name: str, metric: str, higher_is_better: bool | None = None
    ) -> ModelVersion | None:
        """The version with the best value of ``metric``; None when no version has it.

        ``higher_is_better=None`` uses the direction recorded at registration (higher
        when none was). Versions without the metric are skipped; a tie goes to the
        newer version.
        """
        candidates = [v for v in self._record(name).versions.values() if metric in v.metrics]
        if not candidates:
            return None
        higher = (
            prefers_higher(candidates, metric) if higher_is_better is None else higher_is_better
        )
        sign = 1.0 if higher else -1.0
        return max(candidates, key=lambda v: (sign * v.metrics[metric], semver_key(v.version)))

    def production(self, name: str) -> str | None:
        """The version serving now, or None before the first promotion."""
        return self._record(name).production

    def history(self, name: str) -> list[ProductionChange]:
        """Every promotion and rollback of ``name``, oldest first."""
        return list(self._record(name).history)

    def promote(
        self,
        name: str,
        version: str,
        *,
        expected_current: str | None,
        gate_report: GateReport | None,
    ) -> ProductionChange:
        """Make ``version`` production if the gate passed and production is as expected.

        Compare-and-set against the store as it is now: refused (PromotionRefusedError)
        when the production version is not ``expected_current``, so two operators cannot
        promote over each other. Also refused without a passing report, when the report
        does not name this model and version (or names another digest), or when
        ``version`` already serves. RegistryConflictError when another writer appended
        between the check and the write (nothing written; call again).
        """
        self.reload()
        record = self._record(name)
        candidate = self.get(name, version)
        report = check_gate_report(candidate, gate_report)
        check_current(record, expected_current)
        if record.production == version:
            raise PromotionRefusedError(f"{name} {version} is already in production")
        payload = {
            "previous": record.production,
            "gate": report.summary(),
            "gate_digest": gate_digest(report),
        }
        self._write(RegistryEvent("promoted", name, version, self._now(), payload))
        return self._record(name).history[-1]

    def rollback(self, name: str, *, expected_current: str | None = None) -> ProductionChange:
        """Return production to the version it had before the last promotion in effect.

        Successive rollbacks walk further back; refused when there is nothing earlier.
        With ``expected_current`` it is a compare-and-set like ``promote``: refused when
        that is not the version serving now (None skips the check; a model with no
        production version has nothing to roll back anyway).
        """
        self.reload()
        record = self._record(name)
        if expected_current is not None:
            check_current(record, expected_current)
        if len(record.lineage) < 2:
            raise PromotionRefusedError(f"{name!r} has no earlier production version")
        target = record.lineage[-2]
        payload = {"previous": record.production}
        self._write(RegistryEvent("rolled_back", name, target, self._now(), payload))
        return self._record(name).history[-1]

    def _record(self, name: str) -> ModelRecord:
        record = self._state.models.get(name)
        if record is None:
            raise RegistryError(f"unknown model {name!r}")
        return record

    def _write(self, event: RegistryEvent) -> None:
        # Apply first: an event the state refuses is never written. The store refuses
        # it in turn if the log moved since the reload this event was validated on.
        new_state = apply(self._state, event)
        if self._sign is not None:
            event = self._sign(event)
            if self._check is not None and self._check(event) is not None:
                raise RegistryError("the signing key does not match the verify key")
        self.store.append(event, expected_position=self._position)
        self._state, self._position = new_state, self._position + 1

    def _now(self) -> datetime:
        now = self._clock()
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise RegistryError("the registry clock must return a timezone-aware datetime")
        return now
