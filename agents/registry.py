"""Registry flow: every worker follows the model-registry log and hot-swaps what it serves.

The follower is an app task, not an agent: an agent's consumer belongs to the group,
which would give the one registry partition to a single worker, while every worker
must see every event. ``/registry`` shows this worker's view of the log. Every worker
folds the whole log, so any worker answers for all of them and the page needs no
forwarding to a partition's owner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stream_app.app import StreamApp
from stream_app.registry_follower import RegistryFollower

__all__ = ["CATCH_UP_SECONDS", "install"]

log = logging.getLogger(__name__)

# The longest a starting worker waits for its model before it joins the consumer group.
CATCH_UP_SECONDS = 30.0


def install(app: StreamApp) -> None:
    """Add the registry follower and the /registry page to ``app``.

    The follower starts before the worker's consumer joins the group, which waits until
    the follower has read the log and loaded the production version (at most
    :data:`CATCH_UP_SECONDS`, or at once when nothing is promoted): a worker that joined
    first was given partitions it could not score until its model loaded, and their
    requests waited (about 6 s of a join under load). The follower runs until the app stops.
    """
    follower = RegistryFollower(app.settings, app.serving)
    app.registry_health = follower.health
    app.registry_report = follower.report

    async def follow_then_join() -> None:
        if not follower.started:  # on_start runs again if the app restarts
            follower.started = True
            app.add_future(follower.run())
        try:
            await asyncio.wait_for(follower.caught_up.wait(), CATCH_UP_SECONDS)
        except TimeoutError:
            log.warning("the registry was not read within %g s; joining the group without "
                        "a model, which the partitions given to this worker wait for",
                        CATCH_UP_SECONDS)  # fmt: skip

    app.before_join.append(follow_then_join)

    @app.page("/registry")
    async def registry_page(web: Any, request: Any) -> Any:
        return web.json(follower.report())
