"""Scoring: micro-batches of allowed requests -> predictions, prediction-logs, summaries.

requests-scoring -> take(batch_size, within) -> one predict_proba per variant (in an
executor, so the event loop keeps serving pages and heartbeats) -> predictions and
prediction-logs keyed by request_id, and one BatchSummary per metrics window of the
batch to monitor-events for the drift, A/B and service-metrics agents.

A batch is scored with one snapshot of ``app.serving``, so a model swap lands between
batches. If the model raises on a batch, each request is retried alone; a request that
still fails goes to requests-invalid with reason ``scoring_failed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import ValidationError

from schemas.codec import decode, encode
from schemas.events import FieldError, Prediction, PredictionRequest, Rejection, RejectReason
from stream_app.app import StreamApp
from stream_app.inference.score import score_variants
from stream_app.inference.scrub import build_prediction_log, log_policy
from stream_app.monitoring.batch_summary import check_reference, summarize_batch
from stream_app.monitoring.stats import ReferenceProfile
from stream_app.serving import Serving

__all__ = ["install", "score_batch"]

log = logging.getLogger(__name__)

Scored = tuple[list[tuple[PredictionRequest, Prediction]], list[PredictionRequest]]


def score_batch(
    serving: Serving, requests: Sequence[PredictionRequest], *, experiment: str
) -> Scored:
    """Score a batch; on a model error retry each request alone. -> (scored, failed)."""
    try:
        predictions = score_variants(
            serving.scorers, requests, experiment=experiment, b_share=serving.b_share
        )
        return list(zip(requests, predictions, strict=True)), []
    except Exception as exc:  # a model may raise anything; isolate the request(s) behind it
        log.warning("scoring a batch of %d failed (%s); retrying one by one",
                    len(requests), type(exc).__name__)  # fmt: skip
    scored, failed = [], []
    for request in requests:
        try:
            one = score_variants(
                serving.scorers, [request], experiment=experiment, b_share=serving.b_share
            )
            scored.append((request, one[0]))
        except Exception:  # noqa: BLE001 - same reason as above
            failed.append(request)
    return scored, failed


def install(app: StreamApp) -> None:
    """Add the scoring agent."""
    settings, topics = app.settings, app.kafka_topics
    policy = log_policy(settings.pseudonym_key_bytes)
    monitor_key = settings.model_name.encode()
    profiles: dict[str, ReferenceProfile | None] = {}

    def reference(serving: Serving) -> ReferenceProfile | None:
        version = serving.production_version
        if version not in profiles:
            data = serving.production.metadata.get("reference_profile")
            profiles[version] = check_reference(data)
        return profiles[version]

    @app.agent(topics.requests_scoring, name="score")
    async def score(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for values in stream.take(settings.batch_size, within=settings.batch_within_seconds):
            requests, broken = _decode(values)
            for raw in broken:
                await topics.requests_invalid.send(key=None, value=_failed(raw, "schema"))
            if not requests:
                continue
            serving = await app.serving.wait_loaded()
            scored, failed = await loop.run_in_executor(
                None, partial(score_batch, serving, requests, experiment=settings.ab_experiment)
            )
            for request, prediction in scored:
                key = request.request_id.encode()
                log_event = build_prediction_log(
                    request.request_id, request, prediction, prediction.latency_ms,
                    now=request.timestamp or datetime.now(UTC), policy=policy,
                )  # fmt: skip
                await topics.predictions.send(key=key, value=encode(prediction))
                await topics.prediction_logs.send(key=key, value=_dumps(log_event))
            for request in failed:
                raw = encode(request)
                await topics.requests_invalid.send(
                    key=request.client_id.encode(),
                    value=_failed(raw, "scoring_failed", request),
                )
            for summary in summarize_batch(
                settings.model_name, serving.production_version, serving.challenger_version,
                reference(serving), scored, failed, window_seconds=settings.metrics_window_seconds,
            ):  # fmt: skip
                await topics.monitor_events.send(key=monitor_key, value=encode(summary))


def _decode(values: Sequence[bytes]) -> tuple[list[PredictionRequest], list[bytes]]:
    # Intake wrote these, so a failure means a foreign writer on an internal topic.
    requests, broken = [], []
    for value in values:
        try:
            requests.append(decode(value, PredictionRequest))
        except ValidationError:
            broken.append(bytes(value))
    return requests, broken


def _failed(raw: bytes, reason: RejectReason, request: PredictionRequest | None = None) -> bytes:
    message = (
        "the model failed on this request" if reason == "scoring_failed"
        else "not a valid request on the internal scoring topic"
    )  # fmt: skip
    rejection = Rejection(
        reason=reason,
        errors=(FieldError(loc="", message=message, type=reason),),
        raw=raw,
        request_id=None if request is None else request.request_id,
        client_id=None if request is None else request.client_id,
    )
    return encode(rejection)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
