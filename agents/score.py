"""Scoring, the last part of intake's batch step: allowed requests -> predictions,
prediction-logs and summaries.

The requests a batch allows -> one predict_proba per variant (in an executor, so the
event loop keeps serving pages and heartbeats) -> predictions and prediction-logs keyed
by request_id, and one BatchSummary per metrics window of the batch to monitor-events
for the drift, A/B and service-metrics agents.

A batch is scored with one snapshot of ``app.serving``, so a model swap lands between
batches. If the model raises on a batch, each request is retried alone; a request that
still fails goes to requests-invalid with reason ``scoring_failed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

from agents.driver import Message
from schemas.codec import encode
from schemas.events import FieldError, Prediction, PredictionRequest, Rejection, RejectReason
from schemas.monitor import ExposureRecord
from stream_app.app import StreamApp
from stream_app.inference.score import score_variants
from stream_app.inference.scrub import build_prediction_log, log_policy
from stream_app.metrics import RequestFate
from stream_app.monitoring.batch_summary import check_reference, summarize_batch
from stream_app.monitoring.stats import ReferenceProfile
from stream_app.serving import Serving

__all__ = ["Scored", "Scoring", "score_batch"]

log = logging.getLogger(__name__)


class Scored(NamedTuple):
    """A batch scored: the requests and their predictions, those the model failed on,
    and for each prediction its variant's model time (ms), which the A/B latency
    guardrail compares (a prediction's latency_ms runs from its request's arrival)."""

    scored: list[tuple[PredictionRequest, Prediction]]
    failed: list[PredictionRequest]
    model_ms: list[float]


def score_batch(
    serving: Serving,
    requests: Sequence[PredictionRequest],
    *,
    experiment: str,
    assignment_key: bytes | None = None,
    arrived: Sequence[float] | None = None,
) -> Scored:
    """Score a batch; on a model error retry each request alone.

    ``arrived``: each request's arrival (epoch seconds), where its latency starts.
    """
    since = list(arrived) if arrived is not None else None
    try:
        scores = score_variants(
            serving.scorers, requests, experiment=experiment, b_share=serving.b_share,
            assignment_key=assignment_key, arrived=since,
        )  # fmt: skip
        return Scored(list(zip(requests, scores.predictions, strict=True)), [], scores.model_ms)
    except Exception as exc:  # a model may raise anything; isolate the request(s) behind it
        log.warning("scoring a batch of %d failed (%s); retrying one by one",
                    len(requests), type(exc).__name__, extra={"count": len(requests)})  # fmt: skip
    out = Scored([], [], [])
    for i, request in enumerate(requests):
        try:
            one = score_variants(
                serving.scorers, [request], experiment=experiment, b_share=serving.b_share,
                assignment_key=assignment_key, arrived=None if since is None else [since[i]],
            )  # fmt: skip
            out.scored.append((request, one.predictions[0]))
            out.model_ms.append(one.model_ms[0])
        except Exception:  # noqa: BLE001 - same reason as above
            out.failed.append(request)
    return out


class Scoring:
    """Scores the allowed requests of a batch step and says what to send for each.

    One snapshot of ``app.serving`` per batch (a swap lands between batches), the model
    and the log scrubbing in the default executor (so the event loop keeps serving
    pages and heartbeats), and one BatchSummary per metrics window of the batch.
    """

    def __init__(self, app: StreamApp) -> None:
        self.app = app
        settings, topics = app.settings, app.kafka_topics
        self.policy = log_policy(settings.pseudonym_key_bytes)
        self.monitor_key = settings.model_name.encode()
        self.profiles: dict[str, ReferenceProfile | None] = {}
        self.names = {
            name: getattr(topics, name).get_topic_name()
            for name in (
                "predictions",
                "prediction_logs",
                "requests_invalid",
                "monitor_events",
                "exposures",
            )
        }

    async def score(
        self, requests: Sequence[PredictionRequest], arrived: Sequence[float]
    ) -> tuple[list[list[Message]], list[Message]]:
        """-> (the messages of each request, in order; the batch's monitor summaries).

        ``arrived``: each request's arrival (epoch seconds), where its latency starts.
        """
        serving = await self.app.serving.wait_loaded()
        loop = asyncio.get_running_loop()
        work = partial(self._score, serving, requests, arrived)
        return await loop.run_in_executor(None, work)

    def _score(
        self, serving: Serving, requests: Sequence[PredictionRequest], arrived: Sequence[float]
    ) -> tuple[list[list[Message]], list[Message]]:
        settings = self.app.settings
        scored, failed, model_ms = score_batch(
            serving, requests, experiment=settings.ab_experiment,
            assignment_key=settings.ab_assignment_key_bytes, arrived=arrived,
        )  # fmt: skip
        out: dict[str, list[Message]] = {}
        for request, prediction in scored:
            key = request.request_id.encode()
            log_event = build_prediction_log(
                request.request_id, request, prediction, prediction.latency_ms,
                now=request.timestamp or datetime.now(UTC), policy=self.policy,
            )  # fmt: skip
            exposure = ExposureRecord(
                request_id=prediction.request_id, variant=prediction.variant,
                model_version=prediction.model_version,
                serving_version=serving.production_version,
                challenger_version=serving.challenger_version, timestamp=prediction.timestamp,
            )  # fmt: skip
            out[request.request_id] = [
                Message(self.names["predictions"], key, encode(prediction), note=_fate(prediction)),
                Message(self.names["prediction_logs"], key, encode(log_event)),
                # The join's copy, sent once the prediction is acknowledged: no exposure
                # for a prediction that was never delivered.
                Message(self.names["exposures"], key, encode(exposure), derived=True),
            ]
        for request in failed:
            value = _failed(encode(request), "scoring_failed", request)
            note = RequestFate("invalid", reason="scoring_failed")
            client = request.client_id.encode()
            invalid = Message(self.names["requests_invalid"], client, value, note=note)
            out[request.request_id] = [invalid]
        summaries = [
            Message(self.names["monitor_events"], self.monitor_key, encode(summary), derived=True)
            for summary in summarize_batch(
                settings.model_name, serving.production_version, serving.challenger_version,
                self._reference(serving), scored, failed,
                window_seconds=settings.metrics_window_seconds, model_ms=model_ms,
            )
        ]  # fmt: skip
        return [out.pop(r.request_id, []) for r in requests], summaries

    def _reference(self, serving: Serving) -> ReferenceProfile | None:
        version = serving.production_version
        if version not in self.profiles:
            data = serving.production.metadata.get("reference_profile")
            self.profiles[version] = check_reference(data)
        return self.profiles[version]


def _fate(prediction: Prediction) -> RequestFate:
    return RequestFate(
        "scored", variant=prediction.variant, model_version=prediction.model_version,
        latency_seconds=prediction.latency_ms / 1000,
    )  # fmt: skip


def _failed(raw: bytes, reason: RejectReason, request: PredictionRequest | None = None) -> bytes:
    message = "the model failed on this request"
    rejection = Rejection(
        reason=reason,
        errors=(FieldError(loc="", message=message, type=reason),),
        raw=raw,
        request_id=None if request is None else request.request_id,
        client_id=None if request is None else request.client_id,
    )
    return encode(rejection)
