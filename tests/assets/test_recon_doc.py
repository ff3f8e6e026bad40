"""docs/reconciliation.md and the code say the same: the drop copy's and the settlement
file's columns, every break kind, the breaks CSV's columns."""

from __future__ import annotations

import re
from pathlib import Path

from assets.recon.breaks import CSV_COLUMNS, BreakKind
from trading.funding_settlement import COLUMNS as SETTLEMENT_COLUMNS
from trading.venues.base import ExecKind
from trading.venues.dropcopy import COLUMNS as DROPCOPY_COLUMNS

DOC = (Path(__file__).parents[2] / "docs" / "reconciliation.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def _table_keys(section: str) -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_doc_when_read_then_the_file_columns_are_the_writers() -> None:
    assert _table_keys(_section("The venue's drop copy")) == list(DROPCOPY_COLUMNS)
    assert _table_keys(_section("The payment provider's settlement file")) == list(
        SETTLEMENT_COLUMNS
    )
    assert ",".join(DROPCOPY_COLUMNS) in DOC
    assert f"`{','.join(CSV_COLUMNS)}`" in DOC


def test_doc_when_read_then_every_break_kind_and_report_kind_is_there() -> None:
    assert sorted(_table_keys(_section("Break kinds"))) == sorted(k.value for k in BreakKind)
    kinds_row = next(line for line in DOC.splitlines() if line.startswith("| `kind` | `accepted`"))
    assert set(re.findall(r"`([a-z_]+)`", kinds_row)) - {"kind"} == {k.value for k in ExecKind}
