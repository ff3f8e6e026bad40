"""docs/fraud.md says what the fraud flow writes: every field of an alert and of a dead
letter, the lake's alert columns, and the streams' names."""

from __future__ import annotations

from pathlib import Path

from pipelines.fraud import sinks
from pipelines.fraud.records import ALERT_FIELDS, Alert, DeadLetter, alert_fields
from pipelines.fraud.sources import LOGINS_STREAM
from tests.pipelines.positions.test_risk_doc import first_column, sections

DOC = Path(__file__).resolve().parents[3] / "docs" / "fraud.md"


def test_the_alert_stream_fields_and_lake_columns_are_the_codes() -> None:
    alert = Alert("fa-e1", 1, 2, None, "login", "event:1", 0.5, 0.4, "v1", (("x", 1.0),), ())
    doc = sections(DOC)
    assert first_column(doc["Alerts"], "field") == list(ALERT_FIELDS)
    assert list(alert_fields(alert)) == list(ALERT_FIELDS)
    assert list(sinks.LAKE_SCHEMA) == list(ALERT_FIELDS)
    text = "\n".join(doc["Alerts"])
    for name in (sinks.ALERTS_STREAM, sinks.ALERT_IDS, sinks.LAKE_DIR):
        assert name in text, name


def test_the_dead_letter_fields_and_the_streams_read_are_the_codes() -> None:
    dead = DeadLetter("s", "1-0", "why", 1)
    doc = sections(DOC)
    assert first_column(doc["Dead letters"], "field") == list(sinks.dead_fields(dead))
    assert sinks.DEAD_STREAM in "\n".join(doc["Dead letters"])
    assert sinks.HOLDS_SENT in "\n".join(doc["Holds"])
    assert LOGINS_STREAM in "\n".join(doc["The flow"])
