"""topics.py matches DESIGN.md's table, the settings and the README."""

from __future__ import annotations

from dataclasses import fields

from stream_app.config import TOPIC_FIELDS, load_settings
from stream_app.topics import SPECS, Topics, topic_names


def test_specs_topics_and_settings_list_the_same_topics() -> None:
    attrs = [spec.attr for spec in SPECS]
    assert attrs == [f.name for f in fields(Topics)]
    assert [f"topic_{a}" for a in attrs] == list(TOPIC_FIELDS)


def test_names_come_from_settings_with_the_prefix() -> None:
    settings = load_settings({"STREAM_TOPIC_PREFIX": "t1.", "STREAM_TOPIC_OUTCOMES": "conv"})
    names = topic_names(settings)
    assert names["outcomes"] == "t1.conv"
    assert names["prediction_requests"] == "t1.prediction-requests"
    assert len(set(names.values())) == len(SPECS)
