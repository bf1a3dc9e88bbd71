"""Event models for every topic in DESIGN.md (pydantic v2, validated at the edges).

Numbers are strict: a JSON ``true`` is not an age and ``"3"`` is not an amount. The one
exception is an integral float for an integer field (an age of ``30.0`` is 30), because
many JSON encoders write every number as a float; ``30.5`` is still an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_MAX_PURCHASE_HISTORY",
    "MAX_CLIENT_ID_LENGTH",
    "MAX_PURCHASE_AMOUNT",
    "MAX_REQUEST_ID_LENGTH",
    "MAX_SESSION_MINUTES",
    "Category",
    "FieldError",
    "Outcome",
    "Prediction",
    "PredictionLog",
    "PredictionRequest",
    "RejectReason",
    "Rejection",
    "ServiceMetrics",
    "ThrottledRequest",
    "Variant",
]

CATEGORIES: tuple[str, ...] = ("electronics", "clothing", "home", "sports")
DEFAULT_MAX_PURCHASE_HISTORY = 1_000
# Upper bounds keep every model feature finite in float32 (max about 3.4e38), which is what
# a scikit-learn forest casts its input to: one request with an amount of 1e39 would
# otherwise make predict_proba raise for its whole micro-batch. The largest feature is
# purchase_total <= MAX_PURCHASE_AMOUNT * history length, i.e. 1e10 at the default length
# of 1,000 and below 1e20 for any list that fits in memory. 10 million (in the currency
# unit) is above any single retail purchase; 100,000 minutes (about 69 days) is above any
# real session, a larger value is a broken clock. features.build_features checks again.
MAX_REQUEST_ID_LENGTH = 128
MAX_CLIENT_ID_LENGTH = 256
MAX_PURCHASE_AMOUNT = 10_000_000.0
MAX_SESSION_MINUTES = 100_000.0

Category = Literal["electronics", "clothing", "home", "sports"]
Variant = Literal["A", "B"]
RejectReason = Literal[
    "malformed_json",
    "too_large",
    "schema",
    "timestamp_ahead",
    "unknown_outcome",
    "conflicting_outcome",
    "scoring_failed",
]

PurchaseAmount = Annotated[
    float, Field(strict=True, gt=0, le=MAX_PURCHASE_AMOUNT, allow_inf_nan=False)
]
SessionMinutes = Annotated[
    float, Field(strict=True, gt=0, le=MAX_SESSION_MINUTES, allow_inf_nan=False)
]


class PredictionRequest(BaseModel):
    """A request to score one user, as upstream services produce it.

    Unknown fields (an e-mail, a customer_id) are kept: upstream sends them and the
    log scrubber is what removes them. The purchase-history bound can be changed per
    call with the validation context ``{"max_purchase_history": n}``.

    ``hide_input_in_errors`` keeps submitted values out of ``str(ValidationError)``, so
    a stray log line of the exception cannot leak them either.

    Example:
        >>> r = PredictionRequest.model_validate_json(
        ...     '{"request_id": "r1", "client_id": "c1", "user_id": "USR", "age": 30.0,'
        ...     ' "purchase_history": [9.5], "category_preference": "home",'
        ...     ' "session_duration_minutes": 3, "email": "jo@example.com"}')
        >>> r.age, r.model_extra
        (30, {'email': 'jo@example.com'})
    """

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    request_id: str = Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH)
    client_id: str = Field(min_length=1, max_length=MAX_CLIENT_ID_LENGTH)
    timestamp: AwareDatetime | None = None
    user_id: str = Field(max_length=128)
    age: int = Field(strict=True, ge=13, le=120)
    purchase_history: list[PurchaseAmount] = Field(min_length=1)
    category_preference: Category
    session_duration_minutes: SessionMinutes

    @field_validator("user_id")
    @classmethod
    def _user_id_prefix(cls, value: str) -> str:
        if not value.startswith("USR"):
            raise ValueError('must start with "USR"')
        return value

    @field_validator("age", mode="before")
    @classmethod
    def _integral_float_age(cls, value: Any) -> Any:
        # Many JSON encoders write 30 as 30.0: an integral float is that integer. Anything
        # else (30.5, true, "30") goes on to the strict int check and is refused there.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("purchase_history", mode="wrap")
    @classmethod
    def _history_bound(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[float]:
        # The length is checked before the items: a 1 MiB list of bad amounts would
        # otherwise cost one error object per item (seconds) before being refused.
        limit = DEFAULT_MAX_PURCHASE_HISTORY
        if isinstance(info.context, dict):
            limit = int(info.context.get("max_purchase_history", limit))
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"must have at most {limit} items")
        items: list[float] = handler(value)
        return items

    def without_extras(self) -> PredictionRequest:
        """The same request with only its own fields: upstream's extras (which may be
        anything, an e-mail included) left behind.

        Example:
            >>> r = PredictionRequest.model_validate({"request_id": "r1", "client_id": "c1",
            ...     "user_id": "USR1", "age": 30, "purchase_history": [9.5],
            ...     "category_preference": "home", "session_duration_minutes": 3,
            ...     "email": "a@b.io"})
            >>> r.model_extra, r.without_extras().model_extra
            ({'email': 'a@b.io'}, {})
        """
        if not self.model_extra:
            return self
        return type(self).model_construct(
            _fields_set=self.model_fields_set - set(self.model_extra),
            **{name: getattr(self, name) for name in type(self).model_fields},
        )


class FieldError(BaseModel):
    """One validation problem; never carries the submitted value."""

    model_config = ConfigDict(frozen=True)

    loc: str
    message: str
    type: str


class Rejection(BaseModel):
    """A message that could not be accepted; goes to requests-invalid with its raw bytes."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    reason: RejectReason
    errors: tuple[FieldError, ...] = ()
    raw: bytes = b""
    request_id: str | None = None
    client_id: str | None = None


class ThrottledRequest(BaseModel):
    """A request refused by the rate limiter, for upstream's retry logic.

    ``request`` holds the request's own fields (never its extras) scrubbed by the
    prediction-logs policy: enough to recognise and resend it, no personal data.
    """

    model_config = ConfigDict(frozen=True)

    request_id: str
    client_id: str
    remaining: int = Field(ge=0)
    retry_after_seconds: float = Field(ge=0)
    request: dict[str, Any]


class Prediction(BaseModel):
    """The model's answer for one request."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    request_id: str
    model_name: str
    model_version: str
    variant: Variant
    score: float = Field(ge=0, le=1)
    label: int
    latency_ms: float = Field(ge=0)
    timestamp: AwareDatetime | None = None


class PredictionLog(BaseModel):
    """The scrubbed structured log event for one prediction (prediction-logs)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    timestamp: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
    request_id: str
    event: Literal["prediction"] = "prediction"
    model_name: str
    model_version: str
    variant: Variant
    input: dict[str, Any]
    output: dict[str, Any]
    latency_ms: float = Field(ge=0)


class Outcome(BaseModel):
    """Whether the user behind a request converted (outcomes topic, key request_id)."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH)
    converted: Literal[0, 1]
    timestamp: AwareDatetime


class ServiceMetrics(BaseModel):
    """A service's health figures for one interval; extra metrics are carried along.

    The service name is the Kafka key (DESIGN.md), so ``service`` may be absent from the
    value (None); the consuming agent fills it from the key.

    Example:
        >>> m = ServiceMetrics.model_validate_json(
        ...     '{"timestamp": "2026-01-31T12:00:00Z", "error_rate": 0.02, "queue_depth": 7}')
        >>> m.service, m.metrics()
        (None, {'error_rate': 0.02, 'queue_depth': 7.0})
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    service: str | None = Field(default=None, min_length=1)
    timestamp: AwareDatetime
    latency_p99_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    error_rate: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    prediction_volume: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    def metrics(self) -> dict[str, float]:
        """Every numeric metric present, known and extra, by name."""
        out: dict[str, float] = {}
        for key, value in self.model_dump(exclude={"service", "timestamp"}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)
        return out
