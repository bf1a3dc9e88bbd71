"""Keys the tests make for themselves: a registry key pair on disk, a bundle HMAC key."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

from stream_app.lifecycle.registry_signing import generate_key_pair

__all__ = ["KeySet", "make_keys"]


@dataclass(frozen=True)
class KeySet:
    """A registry signing key and its public half (PEM files), and a bundle key."""

    signing: Path
    verify: Path
    bundle_key: bytes

    @property
    def bundle_key_b64(self) -> str:
        return base64.b64encode(self.bundle_key).decode()

    def worker_env(self) -> dict[str, str]:
        """What a worker needs to verify registry events and bundles with these keys."""
        return {
            "STREAM_REGISTRY_VERIFY_KEY": str(self.verify),
            "STREAM_BUNDLE_SIGNING_KEY": self.bundle_key_b64,
        }

    def writer_env(self) -> dict[str, str]:
        """What the registry commands need to sign events and check bundles."""
        return {**self.worker_env(), "STREAM_REGISTRY_SIGNING_KEY": str(self.signing)}


def make_keys(directory: Path) -> KeySet:
    """A fresh registry key pair written under ``directory`` and a random bundle key."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = generate_key_pair()
    signing, verify = directory / "registry-signing.pem", directory / "registry-verify.pem"
    signing.write_bytes(private)
    signing.chmod(0o600)
    verify.write_bytes(public)
    return KeySet(signing, verify, secrets.token_bytes(32))
