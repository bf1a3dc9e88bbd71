"""The project's exceptions: one base class, flat subclasses per area.

Expected outcomes (a rejected request, a refused rate, a failed gate) are values,
not exceptions; these are for the cases a caller cannot carry on from.
"""

from __future__ import annotations

__all__ = [
    "BundleIntegrityError",
    "ConfigError",
    "FeatureMismatchError",
    "GateConfigError",
    "KafkaUnavailableError",
    "PromotionRefusedError",
    "RegistryConflictError",
    "RegistryError",
    "StreamAppError",
]


class StreamAppError(Exception):
    """Base of every error raised by stream-app."""


class ConfigError(StreamAppError):
    """A setting is invalid; the message names the environment variable."""


class KafkaUnavailableError(StreamAppError):
    """The broker does not answer, or cannot be started locally."""


class BundleIntegrityError(StreamAppError):
    """A model bundle failed verification (digest, signature, missing file or field)."""


class FeatureMismatchError(StreamAppError):
    """A bundle's feature list does not match what the feature builder produces."""


class RegistryError(StreamAppError):
    """A registry operation is invalid (duplicate version, unknown model or version)."""


class PromotionRefusedError(RegistryError):
    """A promotion was refused: no passing gate report, or the production version moved."""


class GateConfigError(StreamAppError, ValueError):
    """The pre-deploy gate configuration has an unknown key or a value out of range."""


class RegistryConflictError(RegistryError):
    """A registry write lost a race: the event log moved past the position the writer saw.

    Nothing was written; reading the registry again and repeating the call re-validates
    it against the events the other writer appended.
    """
