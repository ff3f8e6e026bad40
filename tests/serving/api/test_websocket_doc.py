"""docs/websocket.md says what the WebSocket does: its close codes, client ops, server
message types, channels and settings are exactly the code's."""

from __future__ import annotations

import re
from pathlib import Path

from serving.api import ws, ws_channels, ws_hub
from serving.settings import Settings
from tests.pipelines.positions.test_risk_doc import first_column, sections, table

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "websocket.md"


def test_websocket_doc_when_read_then_close_codes_are_the_code_s() -> None:
    codes = {int(c) for c in first_column(sections(DOC)["Close codes"], "code")}
    defined = {v for k, v in vars(ws_hub).items() if k.startswith("CLOSE_")}
    assert codes == defined == {4001, 4008}


def test_websocket_doc_when_read_then_ops_types_and_channels_are_the_code_s() -> None:
    s = sections(DOC)
    assert first_column(s["Client messages"], "op") == list(ws.OPS)
    source = "".join(Path(m.__file__).read_text() for m in (ws, ws_channels) if m.__file__)
    emitted = set(re.findall(r'"type": "(\w+)"', source))
    assert set(first_column(s["Server messages"], "type")) == emitted
    assert first_column(s["Channels"], "channel") == list(ws.CHANNELS)
    risk_row = next(r for r in table(s["Channels"], "channel") if r[0] == "risk")
    for role in ws.RISK_ROLES:
        assert re.search(rf"\b{role}\b", risk_row[1]), role


def test_websocket_doc_when_read_then_settings_and_defaults_are_the_code_s() -> None:
    rows = {r[0]: r[1] for r in table(sections(DOC)["Settings"], "setting")}
    fields = Settings.model_fields
    mine = {n for n in fields if n.startswith("api_ws_")} | {"event_partitions"}
    assert set(rows) == mine
    for name, default in rows.items():
        assert str(fields[name].default) == default, name
