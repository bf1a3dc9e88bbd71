"""The model-registry topic's message: one registry event (key: model name).

The registry writes its events itself (``RegistryEvent.to_json``: sorted keys, so a
signature covers one exact text); this model is their contract for readers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.wire import IsoTime, without_example

__all__ = ["RegistryEventMessage"]


class RegistryEventMessage(BaseModel):
    """A version registered, promoted or rolled back.

    Example:
        >>> event = RegistryEventMessage.model_validate_json(
        ...     '{"at": "2026-01-01T00:00:00+00:00", "kind": "promoted", "name": "m",'
        ...     ' "payload": {"previous": null}, "version": "1.0.0"}')
        >>> event.kind, event.signature
        ('promoted', None)
    """

    model_config = ConfigDict(frozen=True, json_schema_extra=without_example)

    kind: Literal["registered", "promoted", "rolled_back"]
    name: str = Field(min_length=1, description="The model name (also the key).")
    version: str = Field(description="A semantic version MAJOR.MINOR.PATCH[-pre].")
    at: IsoTime = Field(description="When the event was written.")
    payload: dict[str, Any] = Field(
        description="registered: metrics, directions, path, digest, tags; promoted: "
        "previous, gate, gate_digest; rolled_back: previous."
    )
    signature: str | None = Field(
        None, description="The writer's Ed25519 signature (base64), when it signed the event."
    )
