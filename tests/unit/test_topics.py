"""topics.py matches DESIGN.md's table, the settings and the README."""

from __future__ import annotations

from dataclasses import fields

from stream_app.app import create_app
from stream_app.config import TOPIC_FIELDS, load_settings
from stream_app.topics import INTERNAL_SPECS, SPECS, Topics, internal_topic_names, topic_names


def test_specs_topics_and_settings_list_the_same_topics() -> None:
    attrs = [spec.attr for spec in SPECS]
    assert attrs + [spec.attr for spec in INTERNAL_SPECS] == [f.name for f in fields(Topics)]
    assert [f"topic_{a}" for a in attrs] == list(TOPIC_FIELDS)


def test_internal_topics_carry_prefix_and_app_id_and_the_registry_has_one_partition() -> None:
    settings = load_settings({}, topic_prefix="t1.", app_id="w", partitions=6)
    assert internal_topic_names(settings)["monitor_events"] == "t1.w-monitor-events"
    topics = create_app(settings).kafka_topics
    assert topics.model_registry.partitions == 1
    assert topics.requests_rekeyed.partitions == 6
    assert topics.requests_rekeyed.get_topic_name() == "t1.w-requests-rekeyed"


def test_names_come_from_settings_with_the_prefix() -> None:
    settings = load_settings({"STREAM_TOPIC_PREFIX": "t1.", "STREAM_TOPIC_OUTCOMES": "conv"})
    names = topic_names(settings)
    assert names["outcomes"] == "t1.conv"
    assert names["prediction_requests"] == "t1.prediction-requests"
    assert len(set(names.values())) == len(SPECS)
