"""docs/regulatory.md and the code kept in step: the CSV columns and the settings."""

from __future__ import annotations

import re
from pathlib import Path

from assets.regulatory import csv_out
from assets.regulatory.firm import TEST_LEI, FirmSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "regulatory.md"


def _section(title: str) -> str:
    text = DOC.read_text("utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _first_column(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_doc_when_read_then_its_csv_columns_are_the_codes_in_order() -> None:
    section = _section("CSV columns")
    listed = section.split("`buyer_` and `seller_`:")[1].split(".")[0]
    party = re.findall(r"`(\w+)`", listed)
    documented: list[str] = []
    for name in _first_column(section):
        if name.endswith("_*"):
            documented += [f"{name[:-1]}{p}" for p in party]
        else:
            documented.append(name)
    assert tuple(documented) == csv_out.COLUMNS


def test_doc_when_read_then_its_settings_are_the_firms() -> None:
    names = _first_column(_section("Settings"))
    fields = {f"BOURSE_{name.upper()}" for name in FirmSettings.model_fields}
    assert set(names) == fields
    assert f"`{TEST_LEI}`" in _section("Settings")
