"""Settings: the one place that reads the environment (prefix ``STREAM_``).

Every field ``name`` is read from the variable ``STREAM_<NAME>`` (``web_port`` from
``STREAM_WEB_PORT``, ``topic_predictions`` from ``STREAM_TOPIC_PREDICTIONS``). Use
:func:`load_settings` at start: it turns every problem into one :class:`ConfigError`
whose message names the variables, and refuses ``STREAM_`` variables it does not know,
because a misspelt setting silently keeping its default is worse than a refusal.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.errors import ConfigError
from stream_app.lifecycle.registry_signing import load_signing_key, load_verify_key
from stream_app.monitoring.alert_file import load_rules_file

__all__ = [
    "ENV_PREFIX",
    "MIN_KEY_BYTES",
    "TOPIC_FIELDS",
    "Settings",
    "env_name",
    "load_settings",
]

ENV_PREFIX = "STREAM_"
MIN_KEY_BYTES = 32
_SECRET_FIELDS = frozenset(
    {
        "bundle_signing_key",
        "pseudonym_key",
        "ab_assignment_key",
        "kafka_sasl_password",
        "kafka_ssl_key_password",
    }
)
_SASL = ("SASL_SSL", "SASL_PLAINTEXT")
_TLS = ("SASL_SSL", "SSL")

# Kafka allows topic names of at most 249 of [a-zA-Z0-9._-]; the prefix takes up to 100.
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,149}$")]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Everything configurable, validated once at start; see the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid"
    )

    # Kafka and Faust
    broker_url: str = "kafka://127.0.0.1:9092"
    app_id: str = Field("stream-app", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)
    store: str = "memory://"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # How long the group waits for a silent worker before its partitions move on.
    # 6 s is the broker's default group.min.session.timeout.ms; heartbeats every 1 s.
    session_timeout_seconds: float = Field(10.0, ge=6, le=300)
    # How every Kafka client (Faust, aiokafka, admin) connects; see stream_app/kafka_auth.py.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = Field(None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    # None: the system's trusted CAs (a managed cluster with a public certificate).
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None  # a client certificate, for clusters that ask
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    web_host: str = Field("127.0.0.1", min_length=1)
    web_port: Port = 6066
    data_dir: Path = Path("data")
    # The worker's log lines: Faust's text, or one JSON object each (stream_app/logs.py).
    log_format: Literal["text", "json"] = "text"

    # Topic names (DESIGN.md's table); topics.py is the only reader. The prefix goes
    # before every name (e.g. "staging." or a test run's id).
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    topic_prediction_requests: TopicName = "prediction-requests"
    topic_requests_invalid: TopicName = "requests-invalid"
    topic_requests_throttled: TopicName = "requests-throttled"
    topic_predictions: TopicName = "predictions"
    topic_prediction_logs: TopicName = "prediction-logs"
    topic_outcomes: TopicName = "outcomes"
    topic_service_metrics: TopicName = "service-metrics"
    topic_drift_reports: TopicName = "drift-reports"
    topic_ab_reports: TopicName = "ab-reports"
    topic_alerts: TopicName = "alerts"
    topic_model_registry: TopicName = "model-registry"
    topic_model_bundles: TopicName = "model-bundles"

    # Knobs of the pipeline
    rate_limit_max_requests: int = Field(60, ge=1, le=1_000_000)
    rate_limit_window_seconds: float = Field(60.0, gt=0, le=86_400)
    batch_size: int = Field(256, ge=1, le=10_000)
    batch_within_seconds: float = Field(0.05, gt=0, le=10)
    # Decide the next batch while the last one waits for its acknowledgements.
    batch_overlap: bool = True
    drift_window_seconds: float = Field(3600.0, ge=60, le=7 * 86_400)
    ab_b_share: float = Field(0.5, gt=0, lt=1)
    ab_report_interval_seconds: float = Field(300.0, ge=1, le=86_400)
    alert_cooldown_seconds: float = Field(3600.0, gt=0, le=7 * 86_400)
    alert_idle_seconds: float = Field(7 * 86_400.0, ge=60, le=90 * 86_400)
    # A YAML or JSON file of alert rules (stream_app/monitoring/alert_file.py); None: the
    # rules the package ships.
    alert_rules: Path | None = None
    page_max_keys: int = Field(1000, ge=1, le=1_000_000)
    # One traffic point per interval, and how often /dashboard is drawn again at most.
    dashboard_interval_seconds: float = Field(5.0, ge=1, le=3600)
    max_event_time_ahead_seconds: float = Field(300.0, ge=0, le=86_400)
    max_extra_fields: int = Field(64, ge=0, le=10_000)
    max_extra_bytes: int = Field(16_384, ge=0, le=1_048_576)
    metrics_window_seconds: float = Field(60.0, ge=1, le=86_400)
    window_grace_seconds: float = Field(60.0, ge=0, le=86_400)
    # How often a worker ticks its windows (stream_app/monitoring/silence.py); 0: never,
    # and an input that stops closes no window until it comes back.
    silence_tick_seconds: float = Field(10.0, ge=0, le=3600)
    # requests_absent fires when a window's requests are at most this share of the
    # trailing average of the windows that had requests (and always at zero).
    volume_absent_fraction: float = Field(0.1, ge=0, lt=1)
    model_name: str = Field("conversion", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    ab_experiment: str = Field("conversion-ab", pattern=r"^[A-Za-z0-9._:-]{1,100}$")
    ab_max_latency_increase: float = Field(0.5, gt=0, le=10)
    ab_outcome_ttl_seconds: float = Field(86_400.0, ge=60, le=30 * 86_400)
    # requests-invalid keeps refused messages' raw bytes (personal data included).
    invalid_retention_hours: float = Field(72.0, gt=0, le=365 * 24)
    bundle_signing_key: SecretStr | None = None
    # Where registry references may point; a bundle elsewhere is refused unread.
    bundle_root: Path = Path("models")
    # Where `stream-app registry register` puts a bundle: left in its directory under the
    # root, or uploaded to the bundle topic, which every worker can read.
    bundle_store: Literal["directory", "kafka"] = "directory"
    # Largest chunk of a bundle file in the bundle topic: a record must fit the broker's
    # largest message (1,048,588 bytes by default) with its key.
    bundle_chunk_bytes: int = Field(512 * 1024, ge=1024, le=1_000_000)
    # Without a bundle key a worker refuses every bundle unless this says otherwise.
    allow_unsigned_bundles: bool = False
    # PEM files of the Ed25519 key pair of registry events (`stream-app registry keygen`).
    registry_signing_key: Path | None = None
    registry_verify_key: Path | None = None
    pseudonym_key: SecretStr | None = None
    ab_assignment_key: SecretStr | None = None

    # The local broker of `make kafka-up` (its port is broker_url's)
    local_kafka_controller_port: Port = 9093
    local_kafka_dir: Path | None = None

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        _split_broker_url(value)
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value.startswith("memory://"):
            return value
        if value.startswith("rocksdb://"):
            if importlib.util.find_spec("rocksdict") is None:
                raise ValueError("rocksdb:// needs rocksdict (a dependency): reinstall the package")
            return value
        raise ValueError("must start with memory:// or rocksdb://")

    @field_validator("silence_tick_seconds")
    @classmethod
    def _tick(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("must be 0 (no ticks) or at least 0.1")
        return value

    @field_validator("bundle_signing_key", "pseudonym_key", "ab_assignment_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _decode_key(value.get_secret_value())
        return value

    @field_validator("bundle_root")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Judged against the directory the process starts in, once: a worker and the CLI
        # started elsewhere with the same absolute root agree.
        return Path(os.path.normpath(value.expanduser().absolute()))

    @field_validator("alert_rules")
    @classmethod
    def _alert_rules(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_rules_file(value)
        return value

    @model_validator(mode="after")
    def _absent_fraction(self) -> Settings:
        # It sets a threshold of the shipped rules only: with a file of one's own it
        # would silently do nothing.
        if self.alert_rules is not None and "volume_absent_fraction" in self.model_fields_set:
            raise ValueError(
                f"{env_name('volume_absent_fraction')} sets the shipped rules' requests_absent "
                f"only: with {env_name('alert_rules')}, set its threshold in the file"
            )
        return self

    @field_validator("registry_signing_key")
    @classmethod
    def _signing_key(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_signing_key(value)
        return value

    @field_validator("registry_verify_key")
    @classmethod
    def _verify_key(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_verify_key(value)
        return value

    @model_validator(mode="after")
    def _unsigned(self) -> Settings:
        if self.allow_unsigned_bundles and self.bundle_signing_key is not None:
            raise ValueError(
                f"{env_name('allow_unsigned_bundles')} is used only without "
                f"{env_name('bundle_signing_key')} (with a key every bundle must be signed)"
            )
        return self

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        sasl = ("kafka_sasl_username", "kafka_sasl_password")
        if protocol in _SASL:
            missing = [env_name(f) for f in sasl if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{' and '.join(missing)} must be set for {protocol}")
        else:
            _refuse_unused(self, sasl, protocol, "SASL_SSL or SASL_PLAINTEXT")
        if protocol not in _TLS:
            tls = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
            _refuse_unused(self, (*tls, "kafka_ssl_key_password"), protocol, "SSL or SASL_SSL")
        for field in ("kafka_ssl_keyfile", "kafka_ssl_key_password"):
            if self.kafka_ssl_certfile is None and getattr(self, field) is not None:
                certfile = env_name("kafka_ssl_certfile")
                raise ValueError(f"{env_name(field)} is used only with {certfile}")
        return self

    @model_validator(mode="after")
    def _distinct(self) -> Settings:
        seen: dict[str, str] = {}
        for field in TOPIC_FIELDS:
            name = getattr(self, field)
            if name in seen:
                raise ValueError(
                    f"{env_name(field)} and {env_name(seen[name])} name the same topic {name!r}"
                )
            seen[name] = field
        for field in ("drift_window_seconds", "ab_report_interval_seconds"):
            ratio = getattr(self, field) / self.metrics_window_seconds
            if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
                raise ValueError(
                    f"{env_name(field)} must be a whole multiple of "
                    f"{env_name('metrics_window_seconds')} ({self.metrics_window_seconds:g})"
                )
        port = self.broker_port
        if port == self.local_kafka_controller_port:
            raise ValueError(
                f"{env_name('local_kafka_controller_port')} must differ from the "
                f"broker port {port} of {env_name('broker_url')}"
            )
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` of every broker in ``broker_url``, for aiokafka clients."""
        return [f"{host}:{port}" for host, port in _split_broker_url(self.broker_url)]

    @property
    def broker_host(self) -> str:
        """Host of the first broker in ``broker_url``."""
        return _split_broker_url(self.broker_url)[0][0]

    @property
    def broker_port(self) -> int:
        """Port of the first broker in ``broker_url``."""
        return _split_broker_url(self.broker_url)[0][1]

    @property
    def bundle_signing_key_bytes(self) -> bytes | None:
        """The decoded bundle signing key (at least 32 bytes), or None when unset."""
        key = self.bundle_signing_key
        return None if key is None else _decode_key(key.get_secret_value())

    @property
    def registry_signer(self) -> Ed25519PrivateKey | None:
        """The private key registry events are signed with, or None when unset."""
        path = self.registry_signing_key
        return None if path is None else load_signing_key(path)

    @property
    def registry_verifier(self) -> Ed25519PublicKey | None:
        """The public key registry events are checked with, or None when unset."""
        path = self.registry_verify_key
        return None if path is None else load_verify_key(path)

    @property
    def ab_assignment_key_bytes(self) -> bytes | None:
        """The decoded HMAC key of the A/B assignment (at least 32 bytes), or None."""
        key = self.ab_assignment_key
        return None if key is None else _decode_key(key.get_secret_value())

    @property
    def pseudonym_key_bytes(self) -> bytes | None:
        """The decoded HMAC key for log pseudonyms (at least 32 bytes), or None."""
        key = self.pseudonym_key
        return None if key is None else _decode_key(key.get_secret_value())


TOPIC_FIELDS: tuple[str, ...] = tuple(
    f for f in Settings.model_fields if f.startswith("topic_") and f != "topic_prefix"
)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``.

    Example:
        >>> env_name("web_port")
        'STREAM_WEB_PORT'
    """
    return ENV_PREFIX + field.upper()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; any problem is one ConfigError naming the variables.

    ``environ`` defaults to the process environment (checked for unknown ``STREAM_``
    names); ``overrides`` are field values that win over it.

    Example:
        >>> load_settings({}, web_port=8080).web_port
        8080
        >>> load_settings({"STREAM_AB_B_SHARE": "2"})
        Traceback (most recent call last):
        ...
        stream_app.errors.ConfigError: STREAM_AB_B_SHARE: Input should be less than 1 (got '2')
    """
    env = os.environ if environ is None else environ
    known = {env_name(field): field for field in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(
            f"unknown setting {', '.join(unknown)} (known: see the README's settings table)"
        )
    values: dict[str, Any] = {known[k]: v for k, v in env.items() if k in known and v != ""}
    values.update(overrides)
    try:
        # model_validate skips BaseSettings.__init__, so os.environ is read here only.
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, values)) from None


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            lines.append(message)
            continue
        field = str(error["loc"][0])
        shown = ""
        if field not in _SECRET_FIELDS and field in values:
            shown = f" (got {str(values[field])!r})"
        lines.append(f"{env_name(field)}: {message}{shown}")
    return "; ".join(lines)


def _refuse_unused(settings: Settings, fields: tuple[str, ...], protocol: str, needs: str) -> None:
    """A credential that the protocol would ignore is refused: it means a misunderstanding."""
    for field in fields:
        if getattr(settings, field) is not None:
            raise ValueError(
                f"{env_name(field)} is used only with "
                f"{env_name('kafka_security_protocol')}={needs} (it is {protocol})"
            )


def _split_broker_url(url: str) -> list[tuple[str, int]]:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust's form) -> [(host, port), ...]."""
    servers = []
    for part in url.split(";"):
        scheme, sep, rest = part.strip().partition("://")
        if not sep or scheme != "kafka":
            raise ValueError("must look like kafka://host:port (several separated by ;)")
        host, sep, port = rest.rstrip("/").rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("must look like kafka://host:port with a port 1..65535")
        servers.append((host, int(port)))
    return servers


def _decode_key(text: str) -> bytes:
    """Decode a base64 key (standard or URL-safe alphabet) of at least MIN_KEY_BYTES."""
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        key = base64.b64decode(text.strip(), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"must be base64 of at least {MIN_KEY_BYTES} random bytes "
            "(e.g. openssl rand -base64 32)"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"decodes to {len(key)} bytes; at least {MIN_KEY_BYTES} are required "
            "(e.g. openssl rand -base64 32)"
        )
    return key
