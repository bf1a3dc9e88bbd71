"""The demo's two model versions: trained once, registered, and A promoted through the gate.

A (1.0.0) serves as production and B (1.1.0) is the challenger (variant B). Both are
trained with a fixed ``trained_at``, so a rerun writes the same metadata, and a bundle
already on disk is reused when it still verifies (digests, and the signature when
``STREAM_BUNDLE_SIGNING_KEY`` is set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream_app.commands.registry_io import gate_lines, register_bundle, run_gate
from stream_app.errors import PromotionRefusedError, StreamAppError
from stream_app.lifecycle.bundle import Bundle, load_bundle
from stream_app.lifecycle.demo_model import DEFAULT_START, train_demo_bundle
from stream_app.lifecycle.registry import ModelRegistry
from stream_app.lifecycle.serving_choice import CHALLENGER_TAG

__all__ = [
    "DEMO_MODELS",
    "GATE_VALIDATION",
    "DemoModel",
    "bundle_dir",
    "ensure_bundle",
    "register_and_promote",
]

# The validation set of the gate: demo users of another seed than either training set.
GATE_VALIDATION = "demo:2026"


@dataclass(frozen=True)
class DemoModel:
    """One demo version: its semantic version, training seed and role."""

    version: str
    seed: int
    challenger: bool


DEMO_MODELS = (DemoModel("1.0.0", seed=11, challenger=False), DemoModel("1.1.0", 12, True))


def bundle_dir(root: Path, name: str, model: DemoModel) -> Path:
    """Where the bundle of ``model`` lives under the demo's data directory.

    Example:
        >>> bundle_dir(Path("data/demo"), "conversion", DEMO_MODELS[0]).as_posix()
        'data/demo/bundles/conversion-1.0.0'
    """
    return root / "bundles" / f"{name}-{model.version}"


def ensure_bundle(
    root: Path, name: str, model: DemoModel, signing_key: bytes | None
) -> tuple[Bundle, bool]:
    """The verified bundle of ``model``, trained unless a sound one is there.

    Returns (bundle, reused).
    """
    directory = bundle_dir(root, name, model)
    try:
        bundle = load_bundle(directory, signing_key=signing_key)
        if (bundle.name, bundle.version) == (name, model.version) and _fixed_time(bundle):
            return bundle, True
    except (StreamAppError, OSError, ValueError):
        pass  # missing, tampered, signed with another key: train it again
    train_demo_bundle(
        directory,
        name=name,
        version=model.version,
        seed=model.seed,
        signing_key=signing_key,
        trained_at=DEFAULT_START,
        overwrite=True,
    )
    return load_bundle(directory, signing_key=signing_key), False


def _fixed_time(bundle: Bundle) -> bool:
    return str(bundle.metadata.get("trained_at", "")).startswith(DEFAULT_START.date().isoformat())


def register_and_promote(
    registry: ModelRegistry,
    bundles: dict[DemoModel, Bundle],
    echo: Callable[[str], None],
) -> str:
    """Register every bundle (the challenger tagged), promote production through the gate.

    Returns the production version; PromotionRefusedError when the gate fails.
    """
    production: tuple[DemoModel, Bundle] | None = None
    for model, bundle in bundles.items():
        tags = dict([CHALLENGER_TAG]) if model.challenger else {}
        register_bundle(registry, bundle, tags)
        role = "challenger (variant B)" if model.challenger else "production candidate"
        echo(f"registered {bundle.name} {bundle.version} as {role}")
        if not model.challenger:
            production = (model, bundle)
    if production is None:
        raise PromotionRefusedError("no production candidate among the demo models")
    _, bundle = production
    report = run_gate(bundle, GATE_VALIDATION)
    for line in gate_lines(report):
        echo(f"  {line}")
    if not report.passed:
        raise PromotionRefusedError(f"the gate did not pass ({', '.join(report.failed)})")
    change = registry.promote(bundle.name, bundle.version, expected_current=None,
                              gate_report=report)  # fmt: skip
    echo(f"promoted {bundle.name} {change.version} to production")
    return change.version
