"""docs/activity.md says what the API writes to its activity streams: the streams, every
field of a login entry, every reason."""

from __future__ import annotations

from pathlib import Path

from serving.api import activity
from serving.api.activity import LoginOutcome, login_entry
from tests.pipelines.positions.test_risk_doc import first_column, sections

ACTIVITY = Path(__file__).resolve().parents[3] / "docs" / "activity.md"


def test_activity_doc_when_read_then_streams_are_the_code_s() -> None:
    streams = first_column(sections(ACTIVITY)["Streams"], "stream")
    constants = [
        v for k, v in vars(activity).items()
        if k.isupper() and isinstance(v, str) and v.startswith("bourse:activity:")
    ]  # fmt: skip
    assert streams == constants == [activity.LOGINS_STREAM]


def test_activity_doc_when_read_then_login_fields_and_reasons_are_the_code_s() -> None:
    s = sections(ACTIVITY)
    entry = login_entry(ts_ns=1, user_id=2, client_id=3, username="u", device_id="d",
                        ip="127.0.0.1", country="FR", outcome=LoginOutcome.OK)  # fmt: skip
    assert first_column(s["Logins"], "field") == list(entry) == list(activity.LOGIN_FIELDS)
    assert first_column(s["Reasons"], "reason") == [o.value for o in LoginOutcome]
