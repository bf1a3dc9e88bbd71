"""Registry flow: every worker follows the model-registry log and hot-swaps what it serves.

The follower is an app task, not an agent: an agent's consumer belongs to the group,
which would give the one registry partition to a single worker, while every worker
must see every event. ``/registry`` shows this worker's view of the log. Every worker
folds the whole log, so any worker answers for all of them and the page needs no
forwarding to a partition's owner.
"""

from __future__ import annotations

from typing import Any

from stream_app.app import StreamApp
from stream_app.registry_follower import RegistryFollower

__all__ = ["install"]


def install(app: StreamApp) -> None:
    """Add the registry follower task and the /registry page to ``app``."""
    follower = RegistryFollower(app.settings, app.serving)
    app.registry_health = follower.health

    async def follow_registry() -> None:
        await follower.run()

    app.task(follow_registry)  # started once the worker has recovered its tables

    @app.page("/registry")
    async def registry_page(web: Any, request: Any) -> Any:
        return web.json(follower.report())
