"""The app's worker keeps the log level it is given: Faust's own, at WARN or above, set
the root logger to DEBUG for its terminal spinner, so every library's debug line was
built as a record (aiokafka's for each message sent) and then dropped."""

from __future__ import annotations

import logging

import faust
import pytest

from stream_app.app import create_app
from stream_app.config import load_settings


def _logger() -> logging.Logger:
    logger = logging.Logger("worker-test")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    return logger


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR])
def test_the_worker_keeps_the_level_it_is_given(level: int) -> None:
    app = create_app(load_settings({}))
    logger = _logger()
    app.conf.Worker(app, loglevel=level).on_setup_root_logger(logger, level)
    assert logger.level == logging.WARNING
    assert not logger.isEnabledFor(logging.DEBUG)
    assert len(logger.handlers) == 1
    # What Faust's own worker does with the same logger:
    faust_logger = _logger()
    faust.Worker(app, loglevel=level).on_setup_root_logger(faust_logger, level)
    assert faust_logger.isEnabledFor(logging.DEBUG)
