"""The pieces of the intake and scoring agents that need no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from agents.intake import ORIGIN_HEADER, origin
from agents.score import score_batch
from schemas.events import Prediction, PredictionRequest
from stream_app.errors import FeatureMismatchError
from stream_app.inference.features import FEATURE_NAMES
from stream_app.monitoring.ab_counters import ABCounters
from stream_app.monitoring.batch_summary import summarize_batch
from stream_app.monitoring.stats import ReferenceProfile, WindowStats
from stream_app.partitioner import default_partition
from stream_app.serving import ServingModels

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def request(i: int, *, age: int = 30, at: datetime = T0) -> PredictionRequest:
    return PredictionRequest(
        request_id=f"r{i}", client_id="c1", user_id=f"USR{i:06d}", timestamp=at, age=age,
        purchase_history=[10.0], category_preference="home", session_duration_minutes=3.0,
    )  # fmt: skip


class PickyModel:
    """predict_proba = age / 100, but any batch holding age 99 raises."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        if (x[:, 0] == 99).any():
            raise RuntimeError("model cannot handle 99")
        return np.column_stack([1 - x[:, 0] / 100, x[:, 0] / 100])


def serving_of(model: object, version: str = "1.0.0") -> ServingModels:
    models = ServingModels(b_share=0.5)
    meta = {"name": "m", "version": version, "features": list(FEATURE_NAMES)}
    models.install(SimpleNamespace(model=model, metadata=meta), None)
    return models


def test_a_failing_batch_is_retried_one_by_one_and_only_the_culprit_fails() -> None:
    model = PickyModel()
    serving = serving_of(model).current
    assert serving is not None
    batch = [request(1, age=20), request(2, age=99), request(3, age=40)]
    scored, failed, model_ms = score_batch(
        serving, batch, experiment="e", arrived=[10.0, 11.0, 12.0]
    )
    assert [(r.request_id, p.score) for r, p in scored] == [("r1", 0.2), ("r3", 0.4)]
    assert [r.request_id for r in failed] == ["r2"]
    assert model.calls == 4  # the batch, then each request alone
    assert len(model_ms) == 2


def test_a_request_retried_alone_keeps_its_own_arrival() -> None:
    models = serving_of(PickyModel())
    models.clock = lambda: 20.0
    serving = models.current
    assert serving is not None
    batch = [request(1, age=20), request(2, age=99), request(3, age=40)]
    scored, _, _ = score_batch(serving, batch, experiment="e", arrived=[19.5, 19.75, 19.875])
    assert [(r.request_id, p.latency_ms) for r, p in scored] == [("r1", 500.0), ("r3", 125.0)]


def test_a_healthy_batch_is_one_model_call_per_variant() -> None:
    model = PickyModel()
    serving = serving_of(model).current
    assert serving is not None
    scored, failed, _ = score_batch(serving, [request(i) for i in range(10)], experiment="e")
    assert len(scored) == 10 and failed == [] and model.calls == 1


def test_summaries_split_a_batch_at_window_boundaries() -> None:
    rng = np.random.default_rng(3)
    profile = ReferenceProfile.from_data(
        {"age": rng.integers(18, 80, 500).astype(float),
         "purchase_count": np.ones(500), "purchase_total": rng.uniform(1, 100, 500),
         "purchase_mean": rng.uniform(1, 100, 500), "purchase_max": rng.uniform(1, 100, 500),
         "session_duration_minutes": rng.uniform(1, 30, 500),
         "category_preference": rng.choice(["home", "sports"], 500)},
        categorical=["category_preference"],
    )  # fmt: skip
    times = [T0 + timedelta(seconds=s) for s in (10, 59, 60, 125)]
    pairs = []
    for i, at in enumerate(times):
        r = request(i, age=20 + i, at=at)
        variant = "A" if i % 2 == 0 else "B"
        p = Prediction(
            request_id=r.request_id, model_name="m", model_version="1", variant=variant,
            score=0.5, label=1, latency_ms=float(i), timestamp=at,
        )  # fmt: skip
        pairs.append((r, p))
    failed = [request(9, at=T0 + timedelta(seconds=61))]
    # Each exposure's latency sample is its variant's model time, not the latency_ms.
    model_ms = [100.0 + i for i in range(len(pairs))]
    out = summarize_batch("m", "1", "2", profile, pairs, failed, window_seconds=60,
                          model_ms=model_ms)  # fmt: skip

    assert [s.bucket_start for s in out] == [
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
    ]
    assert [(s.scored, s.failed) for s in out] == [(2, 0), (1, 1), (1, 0)]
    assert out[1].first_event == T0 + timedelta(seconds=60)
    assert out[1].last_event == T0 + timedelta(seconds=61)
    first = out[0]
    assert {v: ABCounters.from_dict(c).exposures for v, c in first.variants.items()} == {
        "A": 1,
        "B": 1,
    }
    assert {v: ABCounters.from_dict(c).latency_sum for v, c in first.variants.items()} == {
        "A": 100.0,
        "B": 101.0,
    }
    stats = WindowStats.from_dict(first.features)
    assert stats.count("age") == 2 and stats.mean("age") == 20.5
    assert ReferenceProfile.from_dict(first.reference) == profile
    assert all(s.challenger_version == "2" for s in out)


def test_requests_without_event_time_are_refused_by_the_summary() -> None:
    r = request(1).model_copy(update={"timestamp": None})
    with pytest.raises(ValueError, match="no event time"):
        summarize_batch("m", "1", None, None, [], [r], window_seconds=60, model_ms=[])


# Expected values from Kafka 4.4.0's Java client, Utils.toPositive(Utils.murmur2(key)) % n,
# run in jshell against .kafka/kafka-4.4.0/libs/kafka-clients-4.4.0.jar.
JAVA_PARTITIONS = [
    (b"client-1", 3, 0), (b"client-1", 4, 2), (b"client-1", 7, 2),
    (b"greedy", 3, 2), (b"greedy", 4, 0), (b"greedy", 7, 1),
    (b"USR0000042", 3, 1), (b"USR0000042", 4, 3), (b"USR0000042", 7, 0),
    (b"21", 3, 0), (b"21", 4, 0), (b"21", 7, 3),
]  # fmt: skip


@pytest.mark.parametrize(("key", "partitions", "expected"), JAVA_PARTITIONS)
def test_expected_partition_matches_the_java_client(
    key: bytes, partitions: int, expected: int
) -> None:
    assert default_partition(key, partitions) == expected


def _record(topic: str, partition: int, offset: int, headers: object) -> SimpleNamespace:
    message = SimpleNamespace(topic=topic, partition=partition, offset=offset, headers=headers)
    return SimpleNamespace(message=message)


def test_origin_is_the_message_itself_or_the_header_of_a_rekeyed_copy() -> None:
    assert origin(_record("requests", 2, 41, None), trust_header=True) == ("requests:2", 41)
    copy = _record("rekeyed", 0, 7, [(ORIGIN_HEADER, b"requests:2@41")])
    assert origin(copy, trust_header=True) == ("requests:2", 41)
    as_dict = _record("rekeyed", 0, 7, {ORIGIN_HEADER: b"requests:3@5"})
    assert origin(as_dict, trust_header=True) == ("requests:3", 5)
    broken = _record("rekeyed", 0, 7, [(ORIGIN_HEADER, b"no-offset")])
    assert origin(broken, trust_header=True) == ("rekeyed:0", 7)


def test_an_origin_header_on_a_public_topic_is_ignored() -> None:
    # A client writing the header cannot make its request pass for another's replay.
    forged = _record("requests", 1, 3, [(ORIGIN_HEADER, b"requests:2@999999999")])
    assert origin(forged, trust_header=False) == ("requests:1", 3)


def test_a_bundle_whose_profile_does_not_fit_the_drift_columns_is_refused() -> None:
    models = ServingModels(b_share=0.5)
    meta = {"name": "m", "version": "1", "features": list(FEATURE_NAMES),
            "reference_profile": {"n_bins": 2, "features": {"category_home": {
                "kind": "categorical", "counts": {"0": 3}, "total": 3, "missing": 0}}}}  # fmt: skip
    with pytest.raises(FeatureMismatchError, match="not drift columns"):
        models.install(SimpleNamespace(model=PickyModel(), metadata=meta), None)
    assert models.current is None
