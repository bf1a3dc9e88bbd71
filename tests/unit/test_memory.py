"""The worker's start keeps what it built out of the garbage collector's full passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.app import create_app
from stream_app.config import load_settings
from stream_app.memory import freeze_start


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test process goes on as it was


def test_frozen_objects_leave_the_full_passes_and_later_ones_do_not(unfrozen: None) -> None:
    walked = len(gc.get_objects())
    frozen = freeze_start()
    assert frozen >= walked // 2  # what the imports left: almost everything tracked
    later = [[i] for i in range(1000)]  # lists: always tracked
    assert all(map(gc.is_tracked, later))
    assert len(gc.get_objects()) < walked - frozen + 2 * len(later)


async def test_a_worker_freezes_what_its_start_built(unfrozen: None, tmp_path: Path) -> None:
    app = create_app(load_settings({}, app_id="freeze", data_dir=tmp_path / "data"))
    assert gc.get_freeze_count() == 0
    await app.on_first_start()
    assert gc.get_freeze_count() > 1000
    assert (tmp_path / "data").is_dir()
