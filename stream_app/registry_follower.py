"""Each worker follows the registry log and serves what it names, verified, without a restart.

The follower reads the model-registry topic from offset 0 with a consumer outside any
group (every worker must see every event), folds the events, and whenever the
production or challenger version of ``Settings.model_name`` changes, loads the
bundles in an executor thread (verification hashes files and unpickles: never on the
event loop) and installs them into ``ServingModels``. A bundle that fails verification
is refused: the set serving before keeps serving and /health shows the reason.

With ``STREAM_REGISTRY_VERIFY_KEY`` every event must carry a valid signature
(``lifecycle/registry_signing.py``): one that does not is logged by offset and reason
only, counted, never applied, and /health is degraded until a verified event follows
it. Bundles are loaded by ``lifecycle/bundle_source.py``: under ``STREAM_BUNDLE_ROOT``,
the registered digest checked before anything is unpickled.

``caught_up`` is set once the follower has read the log to its end the first time and
tried to install what it names: a worker waits for it (bounded) before it joins its
consumer group, so the partitions it is given never wait for its model (agents/registry.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.errors import KafkaError

from stream_app.bundle_kafka import open_bundle_store
from stream_app.config import Settings
from stream_app.errors import RegistryError, StreamAppError
from stream_app.lifecycle.bundle import Bundle
from stream_app.lifecycle.bundle_source import BundlePolicy, load_registered
from stream_app.lifecycle.registry_json import record_summary
from stream_app.lifecycle.registry_state import (
    ModelVersion,
    RegistryBuilder,
    RegistryState,
)
from stream_app.lifecycle.serving_choice import ServingChoice, choose_serving
from stream_app.registry_kafka import (
    decode_record,
    event_verifier,
    registry_consumer,
    registry_partition,
)
from stream_app.serving import ServingModels

__all__ = ["BundleLoader", "RegistryFollower"]

log = logging.getLogger(__name__)

BundleLoader = Callable[[ModelVersion], Bundle]
_RETRY_SECONDS = 1.0


class RegistryFollower:
    """Registry state of one worker, and the installs it causes into ``serving``."""

    def __init__(
        self, settings: Settings, serving: ServingModels, *, load: BundleLoader | None = None
    ) -> None:
        self.settings = settings
        self.serving = serving
        self.state = RegistryState(models={})
        self.applied = 0  # events folded
        self.skipped = 0  # records that were not events or that the fold refused
        self.verifier = event_verifier(settings)
        self.policy = BundlePolicy(
            settings.bundle_root, settings.bundle_signing_key_bytes, settings.allow_unsigned_bundles
        )
        # Offset of the newest record refused for its signature, unless a verified event
        # came after it (then None): /health is degraded while it is set.
        self.refused_offset: int | None = None
        self.bundle_store = open_bundle_store(settings)
        self._load = load or self._load_verified
        self._attempted: tuple[str | None, str | None] = (None, None)
        self._bundles: dict[str, Bundle] = {}  # by version: what serves now
        self._next_offset = 0
        self.caught_up = asyncio.Event()  # the log read to its end once, its choice tried
        self.started = False  # run() handed to the app (agents/registry.py)

    def fold(self, records: Iterable[tuple[int, bytes | None]]) -> None:
        """Apply ``(offset, value)`` records; a bad one is logged, counted and skipped.
        One builder for all of them: replaying the log at a start is linear in its length."""
        builder = RegistryBuilder(self.state)
        for offset, value in records:
            self._next_offset = offset + 1
            try:
                event = decode_record(value, offset)
                reason = None if self.verifier is None else self.verifier.check(event)
                if reason is not None:
                    # Offset and reason only: the content is the forger's to choose.
                    self.refused_offset = offset
                    log.error("registry record at offset %d refused: %s", offset, reason)
                    continue
                builder.apply(event)
                self.applied += 1
                self.refused_offset = None
            except RegistryError as exc:
                self.skipped += 1
                log.warning("registry record at offset %d skipped: %s", offset, exc)
        self.state = builder.state()

    async def sync(self) -> None:
        """Install the chosen versions if they changed since the last attempt."""
        choice = choose_serving(self.state, self.settings.model_name)
        if choice.production is None or choice.versions == self._attempted:
            return
        # Remembered before loading: a refused choice is not retried until it changes.
        self._attempted = choice.versions
        try:
            bundles = await self._load_choice(choice)
        except _Refused as refused:
            log.error("refused %s %s: %s", choice.production.name, refused.version, refused)
            self.serving.refuse(refused.version, str(refused))
            if self.serving.current is None:
                await self._fall_back(refused.version)
            return
        self._bundles = bundles
        self.serving.refused = None
        log.info("serving %s: production %s, challenger %s", choice.production.name,
                 *choice.versions)  # fmt: skip
        self._note_warnings(bundles)

    def _note_warnings(self, bundles: dict[str, Bundle]) -> None:
        """Each served bundle's warnings (unsigned, another scikit-learn) to the log and
        /health."""
        self.serving.bundle_warnings = {v: b.warnings for v, b in bundles.items() if b.warnings}
        for version, notes in self.serving.bundle_warnings.items():
            for note in notes:
                log.warning("bundle %s: %s", version, note)

    async def _fall_back(self, refused: str) -> None:
        """Nothing serves yet (a worker that started after a refused promotion): serve the
        newest earlier production version that verifies, alone, rather than nothing.

        The refusal stays on /health (degraded) until the registry's choice changes.
        """
        record = self.state.models[self.settings.model_name]
        for version in reversed(record.lineage[:-1]):
            if version == refused:
                continue
            try:
                self._bundles = await self._load_choice(
                    ServingChoice(record.versions[version], None)
                )
            except _Refused as again:
                log.error("fallback %s refused too: %s", version, again)
                continue
            log.warning("serving earlier production %s while %s is refused", version, refused)
            self._note_warnings(self._bundles)
            return

    async def _load_choice(self, choice: ServingChoice) -> dict[str, Bundle]:
        loop = asyncio.get_running_loop()
        loaded: dict[str, Bundle] = {}
        for wanted in (choice.production, choice.challenger):
            if wanted is None:
                continue
            try:
                bundle = self._bundles.get(wanted.version)
                # A fetched copy lies elsewhere than its location: the digest says it is it.
                same = bundle is not None and (
                    str(bundle.directory) == wanted.path or bundle.digest == wanted.digest
                )
                if bundle is None or not same:
                    bundle = await loop.run_in_executor(None, self._load, wanted)
            except (StreamAppError, ValueError, OSError) as exc:
                # /health shows the reason; the bundle's location stays in the log.
                log.error("version %s at %s refused: %s", wanted.version, wanted.path, exc)
                raise _Refused(wanted.version, str(exc).replace(wanted.path, "<bundle>")) from exc
            loaded[wanted.version] = bundle
        production = loaded[choice.versions[0] or ""]
        challenger = loaded.get(choice.versions[1] or "")
        try:
            self.serving.install(production, challenger)
        except (StreamAppError, ValueError) as exc:
            raise _Refused(production.version, str(exc)) from exc
        return loaded

    def _load_verified(self, version: ModelVersion) -> Bundle:
        return load_registered(version, self.policy, self.bundle_store)

    def health(self) -> dict[str, Any]:
        """The registry component of /health: down (degraded) while the newest record
        refused for its signature has no verified event after it."""
        report: dict[str, Any] = {
            "up": self.refused_offset is None,
            "signatures_verified": self.verifier is not None,
            "refused": {} if self.verifier is None else dict(sorted(self.verifier.refused.items())),
        }
        if self.refused_offset is not None:
            report["error"] = (
                f"registry record at offset {self.refused_offset} refused for its signature; "
                "the model before it keeps serving"
            )
        return report

    async def run(self) -> None:
        """Follow the log until cancelled; Kafka errors are logged and retried."""
        if self.verifier is None:
            log.warning(
                "STREAM_REGISTRY_VERIFY_KEY is not set: registry events are applied without "
                "checking signatures, so anyone who can write to the registry topic can "
                "promote a version"
            )
        tp = registry_partition(self.settings)
        while True:
            consumer = registry_consumer(self.settings)
            try:
                await consumer.start()
                consumer.assign([tp])
                # From the start, or after the last record folded when reconnecting.
                consumer.seek(tp, self._next_offset)
                await self._consume(consumer)
            except KafkaError as exc:
                log.warning("registry follower: %r; retrying in %.0f s", exc, _RETRY_SECONDS)
            finally:
                await consumer.stop()
            await asyncio.sleep(_RETRY_SECONDS)

    async def _consume(self, consumer: Any) -> None:
        tp = registry_partition(self.settings)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            records = batch.get(tp, [])
            self.fold((r.offset, r.value) for r in records)
            stable = consumer.last_stable_offset(tp)
            # Install only once caught up, not for each step of an old history.
            if stable is None or await consumer.position(tp) >= stable:
                await self.sync()
                self.caught_up.set()

    def report(self) -> dict[str, Any]:
        """The /registry page: this model's versions, production, challenger, history."""
        name = self.settings.model_name
        record = self.state.models.get(name)
        choice = choose_serving(self.state, name)
        return {
            "model": name,
            "production": choice.versions[0],
            "challenger": choice.versions[1],
            "serving": self.serving.status(),
            "events_applied": self.applied,
            "records_skipped": self.skipped,
            **(
                _without_paths(record_summary(record))
                if record
                else {"versions": [], "history": []}
            ),
        }


class _Refused(Exception):
    def __init__(self, version: str, reason: str) -> None:
        super().__init__(reason)
        self.version = version


def _without_paths(summary: dict[str, Any]) -> dict[str, Any]:
    """A registry summary for the web: where bundles lie on disk is the operator's
    business (``stream-app registry`` shows it)."""
    versions = [
        {k: v for k, v in version.items() if k != "path"} for version in summary["versions"]
    ]
    return {**summary, "versions": versions}
