"""pydantic v2 event models and the bytes <-> model codec."""

from schemas.codec import decode, decode_topic, encode
from schemas.contracts import CONTRACTS
from schemas.events import (
    CATEGORIES,
    DEFAULT_MAX_PURCHASE_HISTORY,
    MAX_PURCHASE_AMOUNT,
    MAX_SESSION_MINUTES,
    FieldError,
    Outcome,
    Prediction,
    PredictionLog,
    PredictionRequest,
    Rejection,
    ServiceMetrics,
    ThrottledRequest,
)

__all__ = [
    "CATEGORIES",
    "CONTRACTS",
    "DEFAULT_MAX_PURCHASE_HISTORY",
    "FieldError",
    "MAX_PURCHASE_AMOUNT",
    "MAX_SESSION_MINUTES",
    "Outcome",
    "Prediction",
    "PredictionLog",
    "PredictionRequest",
    "Rejection",
    "ServiceMetrics",
    "ThrottledRequest",
    "decode",
    "decode_topic",
    "encode",
]
