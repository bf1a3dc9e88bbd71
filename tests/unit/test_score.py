"""Variant assignment and batch scoring."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.events import (
    DEFAULT_MAX_PURCHASE_HISTORY,
    MAX_PURCHASE_AMOUNT,
    MAX_SESSION_MINUTES,
    PredictionRequest,
)
from stream_app.config import load_settings
from stream_app.errors import ConfigError, FeatureMismatchError
from stream_app.inference.features import FEATURE_NAMES, build_features
from stream_app.inference.score import BatchScorer, assign_variant, score_variants
from stream_app.inference.validate import parse_request

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def request(i: int, *, age: int = 30, user: str | None = None) -> PredictionRequest:
    return PredictionRequest(
        request_id=f"r{i}",
        client_id="c1",
        user_id=user or f"USR{i:06d}",
        timestamp=T0,
        age=age,
        purchase_history=[10.0, 20.0],
        category_preference="sports",
        session_duration_minutes=4.0,
    )


class AgeModel:
    """predict_proba = age / 100 for class 1; records every matrix it is given."""

    def __init__(self, classes: tuple[int, ...] = (0, 1)) -> None:
        self.classes_ = np.array(classes)
        self.calls: list[np.ndarray] = []

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(x)
        p1 = x[:, 0] / 100.0
        cols = {0: 1.0 - p1, 1: p1}
        return np.column_stack([cols[int(c)] for c in self.classes_])


@dataclass
class FakeBundle:
    model: Any
    metadata: Mapping[str, Any] = field(
        default_factory=lambda: {"name": "conv", "version": "2.1.0", "features": FEATURE_NAMES}
    )


def ticking(*values: float) -> Iterator[float]:
    return iter(values)


# --- assign_variant ---------------------------------------------------------------------

GOLDEN = [  # (user_id, variant at b_share 0.5, variant at b_share 0.2), experiment "checkout-2026"
    ("USR000001", "B", "A"),
    ("USR000003", "B", "B"),
    ("USR000005", "B", "A"),
    ("USR000006", "A", "A"),
    ("USR000007", "A", "A"),
    ("USR000008", "B", "B"),
    ("USR000010", "A", "A"),
    ("USR000011", "B", "B"),
    ("USR000012", "A", "A"),
]


@pytest.mark.parametrize(("user", "at_half", "at_fifth"), GOLDEN)
def test_assignment_matches_the_golden_table(user: str, at_half: str, at_fifth: str) -> None:
    assert assign_variant(user, "checkout-2026", 0.5) == at_half
    assert assign_variant(user, "checkout-2026", 0.2) == at_fifth


def test_assignment_is_the_same_in_another_process() -> None:
    users = [f"USR{i:06d}" for i in range(300)]
    code = (
        "import json, sys\n"
        "from stream_app.inference.score import assign_variant\n"
        "users = json.loads(sys.stdin.read())\n"
        "print(json.dumps([assign_variant(u, 'exp-x', 0.3) for u in users]))\n"
    )
    # A different hash seed proves Python's salted hash() plays no part.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(  # noqa: S603 - fixed interpreter and code
        [sys.executable, "-c", code],
        input=json.dumps(users),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(done.stdout) == [assign_variant(u, "exp-x", 0.3) for u in users]


@pytest.mark.parametrize("b_share", [0.05, 0.2, 0.5, 0.7, 0.95])
def test_split_is_within_one_point_on_100k_users(b_share: float) -> None:
    n = 100_000
    b = sum(assign_variant(f"USR{i:07d}", "split-test", b_share) == "B" for i in range(n))
    assert abs(b / n - b_share) < 0.01


def test_extreme_shares_put_everyone_on_one_side() -> None:
    users = [f"USR{i}" for i in range(500)]
    assert {assign_variant(u, "e", 0.0) for u in users} == {"A"}
    assert {assign_variant(u, "e", 1.0) for u in users} == {"B"}


def test_experiments_split_users_independently() -> None:
    users = [f"USR{i:06d}" for i in range(20_000)]
    same = sum(assign_variant(u, "exp-1", 0.5) == assign_variant(u, "exp-2", 0.5) for u in users)
    assert abs(same / len(users) - 0.5) < 0.02


@pytest.mark.parametrize("b_share", [-0.01, 1.01, float("nan"), float("inf")])
def test_share_outside_unit_interval_is_refused(b_share: float) -> None:
    with pytest.raises(ValueError, match=r"b_share must be in \[0, 1\]"):
        assign_variant("USR1", "e", b_share)


# --- BatchScorer ------------------------------------------------------------------------


def test_one_model_call_per_batch_with_the_feature_matrix() -> None:
    model = AgeModel()
    batch = [request(i, age=20 + i) for i in range(5)]
    BatchScorer(FakeBundle(model)).score(batch)
    assert len(model.calls) == 1
    np.testing.assert_array_equal(model.calls[0], build_features(batch))


@pytest.mark.parametrize("classes", [(0, 1), (1, 0)])
def test_score_is_the_probability_of_class_one(classes: tuple[int, ...]) -> None:
    scorer = BatchScorer(FakeBundle(AgeModel(classes)), threshold=0.5)
    predictions = scorer.score([request(1, age=30), request(2, age=50), request(3, age=80)])
    assert [p.score for p in predictions] == pytest.approx([0.3, 0.5, 0.8])
    assert [p.label for p in predictions] == [0, 1, 1]  # score == threshold counts as 1


def test_predictions_carry_identity_latency_and_time() -> None:
    timer = ticking(10.0, 10.0125)
    scorer = BatchScorer(FakeBundle(AgeModel()), variant="B", timer=lambda: next(timer))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    predictions = scorer.score([request(1), request(2)], now=now)
    assert [p.request_id for p in predictions] == ["r1", "r2"]
    for p in predictions:
        assert (p.model_name, p.model_version, p.variant) == ("conv", "2.1.0", "B")
        assert p.latency_ms == pytest.approx(12.5)
        assert p.timestamp == now


def test_each_prediction_s_latency_runs_from_its_own_arrival() -> None:
    timer, clock = ticking(10.0, 10.004), ticking(1000.030)
    scorer = BatchScorer(FakeBundle(AgeModel()), timer=lambda: next(timer),
                         clock=lambda: next(clock))  # fmt: skip
    predictions, model_ms = scorer.score_timed(
        [request(1), request(2), request(3)], arrived=[1000.0, 1000.010, 1000.025]
    )
    assert [p.latency_ms for p in predictions] == pytest.approx([30.0, 20.0, 5.0])
    assert model_ms == pytest.approx(4.0)


def test_an_arrival_after_the_scorer_s_clock_gives_zero_not_a_negative_latency() -> None:
    scorer = BatchScorer(FakeBundle(AgeModel()), clock=lambda: 50.0)
    [prediction] = scorer.score([request(1)], arrived=[50.5])  # another host's clock ahead
    assert prediction.latency_ms == 0.0


def test_arrival_times_must_match_the_requests() -> None:
    with pytest.raises(ValueError, match="2 arrival times for 1 requests"):
        BatchScorer(FakeBundle(AgeModel())).score([request(1)], arrived=[1.0, 2.0])


def test_without_now_each_prediction_keeps_its_request_time() -> None:
    predictions = BatchScorer(FakeBundle(AgeModel())).score([request(1)])
    assert predictions[0].timestamp == T0


def test_empty_batch_does_not_call_the_model() -> None:
    model = AgeModel()
    assert BatchScorer(FakeBundle(model)).score([]) == []
    assert model.calls == []


class NoProba:
    classes_ = np.array([0, 1])


@pytest.mark.parametrize(
    ("bundle", "kwargs", "error", "message"),
    [
        (FakeBundle(AgeModel()), {"variant": "C"}, ValueError, "variant must be"),
        (FakeBundle(AgeModel()), {"threshold": -0.1}, ValueError, r"threshold must be in \[0, 1\]"),
        (FakeBundle(AgeModel()), {"threshold": 1.5}, ValueError, r"threshold must be in \[0, 1\]"),
        (FakeBundle(NoProba()), {}, ValueError, "no predict_proba"),
        (FakeBundle(AgeModel((0, 2))), {}, ValueError, "positive class 1"),
        (
            FakeBundle(AgeModel(), {"name": "m", "version": "1", "features": ["age"]}),
            {},
            FeatureMismatchError,
            "differ",
        ),
    ],
)
def test_scorer_refuses_bad_configuration(
    bundle: FakeBundle, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        BatchScorer(bundle, **kwargs)


# --- score_variants ---------------------------------------------------------------------


def test_mixed_batch_is_scored_once_per_variant_in_input_order() -> None:
    models = {"A": AgeModel(), "B": AgeModel()}
    scorers = {v: BatchScorer(FakeBundle(m), variant=v) for v, m in models.items()}
    batch = [request(i, age=20 + i) for i in range(1, 13)]
    predictions = score_variants(
        scorers, batch, experiment="checkout-2026", b_share=0.5
    ).predictions

    assert [p.request_id for p in predictions] == [r.request_id for r in batch]
    expected = [assign_variant(r.user_id, "checkout-2026", 0.5) for r in batch]
    assert [p.variant for p in predictions] == expected
    assert [p.score for p in predictions] == pytest.approx([r.age / 100 for r in batch])
    assert len(models["A"].calls) == len(models["B"].calls) == 1
    assert len(models["B"].calls[0]) == expected.count("B")


def test_b_s_latency_includes_a_s_call_but_its_model_time_does_not() -> None:
    # One wall clock for both scorers: A's call ends at 100.020, B's (after it) at 100.050.
    wall = ticking(100.020, 100.050)
    timers = {"A": ticking(0.0, 0.015), "B": ticking(1.0, 1.025)}
    scorers = {
        v: BatchScorer(
            FakeBundle(AgeModel()), variant=v, timer=lambda t=t: next(t), clock=lambda: next(wall)
        )  # fmt: skip
        for v, t in timers.items()
    }
    batch = [request(i) for i in range(1, 13)]
    variants = [assign_variant(r.user_id, "e", 0.5) for r in batch]
    assert {"A", "B"} <= set(variants)
    arrived = [100.0 + i / 1000 for i in range(len(batch))]  # 1 ms apart
    scores = score_variants(scorers, batch, experiment="e", b_share=0.5, arrived=arrived)

    ends = {"A": 100.020, "B": 100.050}
    expected = [(ends[v] - at) * 1000 for v, at in zip(variants, arrived, strict=True)]
    assert [p.latency_ms for p in scores.predictions] == pytest.approx(expected)
    assert scores.model_ms == pytest.approx([{"A": 15.0, "B": 25.0}[v] for v in variants])


def test_only_the_variants_present_need_a_scorer() -> None:
    scorers = {"A": BatchScorer(FakeBundle(AgeModel()))}
    batch = [request(i) for i in range(10)]
    assert len(score_variants(scorers, batch, experiment="e", b_share=0.0).predictions) == 10
    with pytest.raises(ValueError, match="no scorer for variant 'B'"):
        score_variants(scorers, batch, experiment="e", b_share=1.0)


def test_a_scorer_under_the_wrong_key_is_refused() -> None:
    scorers = {"B": BatchScorer(FakeBundle(AgeModel()), variant="A")}
    with pytest.raises(ValueError, match="scores variant 'A'"):
        score_variants(scorers, [request(1)], experiment="e", b_share=1.0)


# --- bounds: no valid request can break a batch -----------------------------------------


def _forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, len(FEATURE_NAMES))) * [30, 5, 500, 50, 100, 10, 1, 1, 1, 1]
    y = (x[:, 0] + x[:, 5] > 0).astype(int)
    return RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(x, y)


def test_requests_at_every_bound_score_in_one_batch_with_a_forest() -> None:
    smallest = math.ulp(0.0)  # the smallest positive float: an amount > 0 at its limit
    fields: list[dict[str, Any]] = [
        {
            "age": 120,
            "purchase_history": [MAX_PURCHASE_AMOUNT] * DEFAULT_MAX_PURCHASE_HISTORY,
            "session_duration_minutes": MAX_SESSION_MINUTES,
        },
        {"age": 13, "purchase_history": [smallest], "session_duration_minutes": smallest},
        {
            "age": 40,
            "purchase_history": [MAX_PURCHASE_AMOUNT, smallest],
            "session_duration_minutes": 1.0,
        },
    ]
    batch = []
    for i, changes in enumerate(fields):
        raw = json.dumps(
            {
                "request_id": f"b{i}",
                "client_id": "c1",
                "user_id": f"USR{i}",
                "category_preference": "home",
                **changes,
            }
        ).encode()
        parsed = parse_request(raw)
        assert isinstance(parsed, PredictionRequest), parsed
        batch.append(parsed)
    matrix = build_features(batch)
    assert np.isfinite(matrix.astype(np.float32)).all()
    predictions = BatchScorer(FakeBundle(_forest())).score(batch)
    assert [p.request_id for p in predictions] == ["b0", "b1", "b2"]
    assert all(0.0 <= p.score <= 1.0 for p in predictions)


def test_a_keyed_assignment_is_stable_balanced_and_unguessable_without_the_key() -> None:
    users = [f"USR{i:07d}" for i in range(4000)]
    key, other = b"k" * 32, b"o" * 32
    keyed = [assign_variant(u, "exp-x", 0.3, key) for u in users]
    assert keyed == [assign_variant(u, "exp-x", 0.3, key) for u in users]  # deterministic
    assert abs(keyed.count("B") / len(users) - 0.3) < 0.03
    unkeyed = [assign_variant(u, "exp-x", 0.3) for u in users]
    guessed = [assign_variant(u, "exp-x", 0.3, other) for u in users]
    # Without the key, neither the public hash nor another key predicts the B users
    # better than chance: about 30 % of the true B users among each guess's B users.
    for guess in (unkeyed, guessed):
        hits = sum(g == k == "B" for g, k in zip(guess, keyed, strict=True))
        assert abs(hits / guess.count("B") - 0.3) < 0.05


def test_the_assignment_key_setting_is_a_secret_of_32_bytes_or_more() -> None:
    settings = load_settings({"STREAM_AB_ASSIGNMENT_KEY": base64.b64encode(b"k" * 32).decode()})
    assert settings.ab_assignment_key_bytes == b"k" * 32
    assert "k" * 8 not in repr(settings)
    with pytest.raises(ConfigError, match="STREAM_AB_ASSIGNMENT_KEY: decodes to 5 bytes"):
        load_settings({"STREAM_AB_ASSIGNMENT_KEY": base64.b64encode(b"short").decode()})
