"""Batch scoring and A/B variant assignment.

A micro-batch is scored with one ``predict_proba`` call: for a forest the per-call
overhead dwarfs the per-row cost, so scoring request by request would waste most of
the worker's time (see BENCHMARKS.md, "Batch scoring").

Two times come out of a batch. A prediction's ``latency_ms`` is its own: from its
request's arrival (passed in, epoch seconds) to the moment its variant's model call
returned, by the wall clock. The model time of each variant's call is kept beside it
(:class:`Scores`): it is what the A/B latency guardrail compares, since a mixed batch is
scored A then B and B's requests also wait for A's call.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from schemas.events import Prediction, PredictionRequest, Variant
from stream_app.errors import FeatureMismatchError
from stream_app.inference.features import FEATURE_NAMES, build_features

__all__ = ["BatchScorer", "Scores", "ScoringBundle", "assign_variant", "score_variants"]

_TWO_TO_64 = float(2**64)


class ScoringBundle(Protocol):
    """What the scorer needs from a bundle (``stream_app.lifecycle.bundle.Bundle`` fits)."""

    @property
    def model(self) -> Any: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...


def assign_variant(
    user_id: str, experiment: str, b_share: float, key: bytes | None = None
) -> Variant:
    """Assign a user to variant "A" or "B", the same answer in every process and restart.

    The first 8 bytes of SHA-256 over ``"{experiment}:{user_id}"`` read as an unsigned
    integer give a uniform number in [0, 1); below ``b_share`` means "B". With a ``key``
    (``STREAM_AB_ASSIGNMENT_KEY``) it is HMAC-SHA256 under that key, so nobody without it
    can tell which user ids land in B and report conversions for them. Python's
    ``hash()`` is salted per process, so it cannot be used here.

    Example:
        >>> assign_variant("USR000001", "exp-1", 0.5)
        'A'
        >>> assign_variant("USR000001", "exp-1", 1.0), assign_variant("USR000001", "exp-1", 0.0)
        ('B', 'A')
        >>> users = [f"USR{i:06d}" for i in range(200)]
        >>> keyed = [assign_variant(u, "exp-1", 0.5, key=b"k" * 32) for u in users]
        >>> keyed != [assign_variant(u, "exp-1", 0.5) for u in users], keyed.count("B")
        (True, 87)
    """
    if not 0.0 <= b_share <= 1.0:
        raise ValueError(f"b_share must be in [0, 1], got {b_share!r}")
    text = f"{experiment}:{user_id}".encode()
    digest = (
        hashlib.sha256(text).digest()
        if key is None
        else hmac.new(key, text, hashlib.sha256).digest()
    )
    position = int.from_bytes(digest[:8], "big") / _TWO_TO_64
    return "B" if position < b_share else "A"


class BatchScorer:
    """Scores micro-batches of requests with one bundle for one variant.

    Example:
        >>> from types import SimpleNamespace
        >>> from sklearn.dummy import DummyClassifier
        >>> model = DummyClassifier(strategy="prior").fit(np.zeros((4, 10)), [0, 1, 1, 1])
        >>> bundle = SimpleNamespace(model=model, metadata={
        ...     "name": "demo", "version": "1.0.0", "features": list(FEATURE_NAMES)})
        >>> r = PredictionRequest(request_id="r1", client_id="c1", user_id="USR1", age=30,
        ...     purchase_history=[10.0], category_preference="home",
        ...     session_duration_minutes=5.0)
        >>> p = BatchScorer(bundle, variant="B").score([r])[0]
        >>> p.request_id, p.model_version, p.variant, p.score, p.label
        ('r1', '1.0.0', 'B', 0.75, 1)
    """

    def __init__(
        self,
        bundle: ScoringBundle,
        *,
        variant: str = "A",
        threshold: float = 0.5,
        timer: Callable[[], float] = time.perf_counter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if variant not in ("A", "B"):
            raise ValueError(f"variant must be 'A' or 'B', got {variant!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        features = list(bundle.metadata.get("features", ()))
        if features != list(FEATURE_NAMES):
            raise FeatureMismatchError(
                f"bundle features {features} differ from the builder's {list(FEATURE_NAMES)}"
            )
        model = bundle.model
        if not callable(getattr(model, "predict_proba", None)):
            raise ValueError(f"model {type(model).__name__} has no predict_proba")
        classes = [int(c) for c in getattr(model, "classes_", ())]
        if 1 not in classes:
            raise ValueError(f"model classes {classes} do not include the positive class 1")
        self.variant: Variant = "B" if variant == "B" else "A"
        self.threshold = threshold
        self.model_name = str(bundle.metadata["name"])
        self.model_version = str(bundle.metadata["version"])
        self._model = model
        self._positive = classes.index(1)
        self._timer = timer
        self._clock = clock

    def score(
        self,
        requests: Sequence[PredictionRequest],
        *,
        now: datetime | None = None,
        arrived: Sequence[float] | None = None,
    ) -> list[Prediction]:
        """Score a batch; each prediction's latency_ms runs from its own arrival.

        ``arrived`` holds each request's arrival (epoch seconds, by the clock the
        scorer's ``clock`` keeps); a prediction's latency is from there to the end of the
        model call, never negative. Without it, the arrival is the start of the call.
        ``now`` (event time) stamps the predictions; without it each prediction keeps
        its request's timestamp. An empty batch returns ``[]`` without calling the model.
        """
        return self.score_timed(requests, now=now, arrived=arrived)[0]

    def score_timed(
        self,
        requests: Sequence[PredictionRequest],
        *,
        now: datetime | None = None,
        arrived: Sequence[float] | None = None,
    ) -> tuple[list[Prediction], float]:
        """:meth:`score`, and the model call's own time in ms (features included).

        Example:
            >>> from types import SimpleNamespace
            >>> from sklearn.dummy import DummyClassifier
            >>> model = DummyClassifier().fit(np.zeros((2, 10)), [0, 1])
            >>> bundle = SimpleNamespace(model=model, metadata={
            ...     "name": "demo", "version": "1", "features": list(FEATURE_NAMES)})
            >>> ticks, clock = iter([5.000, 5.004]), iter([100.010])
            >>> scorer = BatchScorer(bundle, timer=lambda: next(ticks), clock=lambda: next(clock))
            >>> r = [PredictionRequest(request_id=f"r{i}", client_id="c", user_id="USR1", age=30,
            ...     purchase_history=[1.0], category_preference="home",
            ...     session_duration_minutes=1.0) for i in (1, 2)]
            >>> predictions, model_ms = scorer.score_timed(r, arrived=[99.990, 100.000])
            >>> [round(p.latency_ms, 3) for p in predictions], round(model_ms, 3)
            ([20.0, 10.0], 4.0)
        """
        if not requests:
            return [], 0.0
        if arrived is not None and len(arrived) != len(requests):
            raise ValueError(f"{len(arrived)} arrival times for {len(requests)} requests")
        started = self._timer()
        matrix = build_features(requests)
        scores = np.asarray(self._model.predict_proba(matrix), dtype=np.float64)[:, self._positive]
        model_ms = max(0.0, (self._timer() - started) * 1000.0)
        if arrived is None:
            latencies = [model_ms] * len(requests)
        else:
            done = self._clock()
            latencies = [max(0.0, (done - at) * 1000.0) for at in arrived]
        # Clipping guards the [0, 1] schema bound against float rounding in averaged trees.
        scores = np.clip(scores, 0.0, 1.0)
        labels = scores >= self.threshold
        predictions = [
            Prediction(
                request_id=request.request_id,
                model_name=self.model_name,
                model_version=self.model_version,
                variant=self.variant,
                score=float(score),
                label=int(label),
                latency_ms=latency_ms,
                timestamp=now if now is not None else request.timestamp,
            )
            for request, score, label, latency_ms in zip(
                requests, scores, labels, latencies, strict=True
            )
        ]
        return predictions, model_ms


@dataclass(frozen=True)
class Scores:
    """A mixed batch's predictions in input order, and for each the model time (ms) of
    the call that scored it: its variant's call alone, not the calls before it."""

    predictions: list[Prediction]
    model_ms: list[float]


def score_variants(
    scorers: Mapping[str, BatchScorer],
    requests: Sequence[PredictionRequest],
    *,
    experiment: str,
    b_share: float,
    now: datetime | None = None,
    assignment_key: bytes | None = None,
    arrived: Sequence[float] | None = None,
) -> Scores:
    """Score a mixed batch: each request goes to its user's variant, one call per variant.

    Predictions come back in input order, each with its latency from its own arrival
    (``arrived``, see :meth:`BatchScorer.score`); the variants are scored A then B, so
    a B prediction's latency includes A's call, and its model time does not. A scorer is
    needed only for the variants that actually occur in the batch.

    Example:
        >>> from types import SimpleNamespace
        >>> from sklearn.dummy import DummyClassifier
        >>> meta = {"name": "demo", "version": "1", "features": list(FEATURE_NAMES)}
        >>> def scorer(variant, prior):
        ...     model = DummyClassifier().fit(np.zeros((4, 10)), prior)
        ...     return BatchScorer(SimpleNamespace(model=model, metadata=meta), variant=variant)
        >>> scorers = {"A": scorer("A", [0, 0, 0, 1]), "B": scorer("B", [0, 1, 1, 1])}
        >>> batch = [PredictionRequest(request_id=f"r{i}", client_id="c", user_id=f"USR00000{i}",
        ...     age=30, purchase_history=[5.0], category_preference="home",
        ...     session_duration_minutes=2.0) for i in (5, 6)]
        >>> [(p.request_id, p.variant, p.score) for p in
        ...  score_variants(scorers, batch, experiment="checkout-2026", b_share=0.5).predictions]
        [('r5', 'B', 0.75), ('r6', 'A', 0.25)]
    """
    if arrived is not None and len(arrived) != len(requests):
        raise ValueError(f"{len(arrived)} arrival times for {len(requests)} requests")
    groups: dict[Variant, list[int]] = {"A": [], "B": []}
    for index, request in enumerate(requests):
        groups[assign_variant(request.user_id, experiment, b_share, assignment_key)].append(index)
    out: list[Prediction | None] = [None] * len(requests)
    model_ms = [0.0] * len(requests)
    for variant, indices in groups.items():
        if not indices:
            continue
        scorer = scorers.get(variant)
        if scorer is None:
            raise ValueError(f"no scorer for variant {variant!r}; have {sorted(scorers)}")
        if scorer.variant != variant:
            raise ValueError(f"scorer under key {variant!r} scores variant {scorer.variant!r}")
        batch = [requests[i] for i in indices]
        since = None if arrived is None else [arrived[i] for i in indices]
        predictions, took = scorer.score_timed(batch, now=now, arrived=since)
        for index, prediction in zip(indices, predictions, strict=True):
            out[index], model_ms[index] = prediction, took
    return Scores([p for p in out if p is not None], model_ms)
