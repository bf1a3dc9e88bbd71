"""The ``make demo`` day: a seeded scenario of upstream traffic, and the report on it.

Pure code (no Kafka): :mod:`stream_app.demo.scenario` builds the messages and their
truth, :mod:`stream_app.demo.report` folds what the pipeline wrote back into text.
"""

__all__: list[str] = []
