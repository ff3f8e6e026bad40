"""docs/commands.md and the code say the same: command types and their body fields, the
entry's fields, the error codes, the stream and key names."""

from __future__ import annotations

import re
from pathlib import Path

from trading.bus import commands as bus
from trading.bus.codec import REGISTRY
from trading.bus.wire import ENTRY_FIELDS, REQUIRED_ENTRY_FIELDS, error_codes

DOC = Path(__file__).resolve().parents[3] / "docs" / "commands.md"


def _sections() -> dict[str, list[str]]:
    """Lines under each heading (## and ###), by heading text."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            out[current] = []
        else:
            out[current].append(line)
    return out


def _table(lines: list[str], header: str) -> list[list[str]]:
    """Rows of the table whose first column is headed ``header``: cells, backticks off."""
    rows: list[list[str]] = []
    inside = False
    for line in lines:
        if line.startswith(f"| {header} |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            rows.append([c.strip().strip("`") for c in line.strip("|").split("|")])
        elif inside:
            break
    return rows


def test_doc_when_read_then_command_types_are_exactly_the_registered_ones() -> None:
    documented = {m.group(1) for m in re.finditer(r"^### `(\w+)`$", DOC.read_text(), re.M)}
    assert documented == set(REGISTRY)


def test_doc_when_read_then_each_type_lists_its_body_fields_and_which_are_required() -> None:
    sections = _sections()
    for name, spec in REGISTRY.items():
        rows = _table(sections[f"`{name}`"], "field")
        documented = {r[0]: r[-1] == "yes" for r in rows}
        assert documented == {f.name: f.required for f in spec.fields}, name


def test_doc_when_read_then_entry_fields_match_the_codec() -> None:
    rows = _table(_sections()["An entry"], "field")
    assert [r[0] for r in rows] == list(ENTRY_FIELDS)
    assert {r[0] for r in rows if r[1] == "yes"} == set(REQUIRED_ENTRY_FIELDS)


def test_doc_when_read_then_error_codes_are_exactly_the_error_tree() -> None:
    rows = _table(_sections()["Error codes"], "code")
    assert {r[0] for r in rows} == set(error_codes())


def test_doc_when_read_then_stream_and_key_names_are_the_code_s() -> None:
    names = {r[0] for r in _table(_sections()["Streams and keys"], "name")}
    assert names == {
        bus.COMMANDS_STREAM,
        bus.GROUP,
        bus.REPLY_PREFIX + "<client id>",
        bus.DEAD_LETTERS,
    }
    text = DOC.read_text()
    assert f"{bus.REPLY_TTL_S} s" in text
