"""docs/risk.md and docs/lake.md say what the positions flow's outputs write: the Redis keys
and every field the encoders write, and the lake's snapshot columns with their types."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.positions import lake, redis_out
from pipelines.positions.records import Alert, AlertKind, DeadLetter
from tests.pipelines.positions.rows import account, currency, exposure, position
from trading.bus import risk as layout

DOCS = Path(__file__).resolve().parents[3] / "docs"
RISK = DOCS / "risk.md"
LAKE = DOCS / "lake.md"


def sections(doc: Path) -> dict[str, list[str]]:
    """Lines under each heading (any level), by heading text."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in doc.read_text().splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            out[current] = []
        else:
            out.setdefault(current, []).append(line)
    return out


def first_column(lines: list[str], header: str) -> list[str]:
    """First cells of the table headed ``| header |``, backticks off."""
    rows: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(f"| {header} |"):
            inside = True
        elif inside and line.startswith("|---"):
            continue
        elif inside and line.startswith("|"):
            rows.append(line.strip("|").split("|")[0].strip().strip("`"))
        elif inside:
            break
    return rows


def table(lines: list[str], header: str) -> list[list[str]]:
    """Every row's cells (a meaning's escaped ``\\|`` may split it: the first cells hold)."""
    rows: list[list[str]] = []
    inside = False
    for line in lines:
        if line.startswith(f"| {header} |"):
            inside = True
        elif inside and line.startswith("|---"):
            continue
        elif inside and line.startswith("|"):
            rows.append([c.strip().strip("`") for c in line.strip("|").split("|")])
        elif inside:
            break
    return rows


def test_risk_doc_when_read_then_keys_table_is_exactly_the_code_s_keys() -> None:
    listed = first_column(sections(RISK)["Keys"], "key")
    assert sorted(listed) == sorted([
        layout.account_key(0).replace("0", "{id}"),
        layout.positions_key(0).replace("0", "{id}"),
        layout.MARGIN_LEVELS, layout.EXPOSURE, layout.CURRENCY_EXPOSURE,
        layout.HOUSE, layout.CHANGES_STREAM, layout.ALERTS_STREAM,
        layout.DEAD_STREAM,
    ])  # fmt: skip
    text = RISK.read_text()
    for name in dir(layout):  # every key constant is spelled in the doc
        value = getattr(layout, name)
        if name.isupper() and isinstance(value, str) and value.startswith("bourse:"):
            assert f"`{value}" in text, name


def test_risk_doc_when_read_then_each_table_lists_exactly_the_fields_written() -> None:
    s = sections(RISK)
    alert = Alert(AlertKind.MARGIN_CALL, 1, "m", account_id=1, level=Decimal(1))
    written = {
        "Account hash": redis_out.account_fields(account(1)),
        "Position": redis_out.position_obj(position(1)),
        "Symbol exposure": redis_out.exposure_obj(exposure("EUR/USD", 1)),
        "Currency exposure": redis_out.currency_obj(currency("EUR", "1", 1)),
        "House hash": redis_out.house_fields("USD", [exposure("EUR/USD", 1)], []),
        "Changes stream": dict.fromkeys(layout.CHANGE_FIELDS),
        "Alerts stream": redis_out.alert_fields(alert),
        "Dead letters": redis_out.dead_fields(DeadLetter("s", "1-0", "r", 1)),
    }
    for section, fields in written.items():
        assert first_column(s[section], "field") == list(fields), section
    assert set(layout.HOUSE_FIELDS) == set(written["House hash"])
    assert {r[0] for r in table(s["Alerts stream"], "kind")} == {k.value for k in AlertKind}
    lots_row = next(line for line in s["Position"] if line.startswith("| `lots` |"))
    for name in redis_out.position_obj(position(1))["lots"][0]:
        assert f'"{name}"' in lots_row, name


def test_risk_doc_when_read_then_the_change_kinds_are_the_code_s() -> None:
    kinds = {layout.KIND_ACCOUNT, layout.KIND_POSITION, layout.KIND_EXPOSURE,
             layout.KIND_CURRENCY}  # fmt: skip
    rows = table(sections(RISK)["Changes stream"], "field")
    kind_row = next(r for r in rows if r[0] == "kind")
    assert set(kind_row[1].replace("`", "").replace(" or ", ", ").split(", ")) == kinds


_TYPES = {"int64": pl.Int64, "string": pl.String, "bool": pl.Boolean}


def test_lake_doc_when_read_then_snapshot_columns_and_types_are_the_schemas() -> None:
    s = sections(LAKE)
    assert set(lake.SCHEMAS) == {"positions", "accounts", "exposure", "exposure_currency"}
    for name, schema in lake.SCHEMAS.items():
        rows = table(s[name], "column")
        assert {r[0]: _TYPES[r[1]] for r in rows} == dict(schema), name
        assert [r[0] for r in rows] == list(schema), name  # in the files' order
        assert f"<home>/lake/{name}/date=YYYY-MM-DD/snapshot-" in LAKE.read_text()
