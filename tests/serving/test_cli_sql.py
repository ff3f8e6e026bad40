"""``bourse sql``: DuckDB views over the lake and the reports, ``-c`` and the prompt."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from pipelines.positions.lake import ACCOUNTS_SCHEMA, POSITIONS_SCHEMA
from pipelines.ticks.lake import Lake
from pipelines.ticks.schema import TICK_SCHEMA
from serving.cli import app
from serving.cli_sql import open_lake, query

runner = CliRunner()
DAY_NS = 1_772_409_600_000_000_000  # 2026-03-02 00:00 UTC
MINUTE = 60 * 10**9


def _ticks(times: list[int], bids: list[int], symbol: str = "EUR/USD") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": symbol, "kind": "quote", "ts_ns": times, "recv_ns": times, "bid": bids,
            "ask": [b + 2 for b in bids], "bid_size": None, "ask_size": None, "price": None,
            "qty": None, "trade_id": None, "source": f"{symbol}@1",
            "source_seq": list(range(len(times))),
        },
        schema=TICK_SCHEMA,
    )  # fmt: skip


def _lake(home: Path) -> pl.DataFrame:
    # Minute 10:00 holds a tick 1 ns before 10:01 (its high); 10:01 opens at the edge.
    ten = DAY_NS + 10 * 3_600 * 10**9
    eur = _ticks([ten + 5, ten + MINUTE - 1, ten + MINUTE, ten + MINUTE + 7],
                 [108_000, 108_900, 107_000, 107_100])  # fmt: skip
    gbp = _ticks([ten + 1, ten + 2], [126_000, 126_001], symbol="GBP/USD")
    rejected = _ticks([ten + 3], [1]).with_columns(
        reason=pl.lit("spike"), detail=pl.lit(None, pl.String)
    )
    frame = pl.concat([eur, gbp])
    Lake(home / "lake").write(frame, rejected)
    return frame


def _snapshot(home: Path, snapshot_ns: int, equity: int) -> None:
    day = dt.datetime.fromtimestamp(snapshot_ns / 1e9, dt.UTC).date()
    accounts = pl.DataFrame(
        [{"snapshot_ns": snapshot_ns, "account_id": 7, "currency": "USD", "base": True,
          "account_type": "margin", "tier": "standard", "state": "active", "cash": 1,
          "balance": 2, "used_margin": 3, "withdrawal_pending": 0, "unrealized": 0,
          "equity": equity, "free_margin": 0, "margin_level": "12.5", "margin_state": "ok",
          "unmarked": "", "positions": 0, "last_seq": 1, "ts_ns": snapshot_ns}],
        schema=ACCOUNTS_SCHEMA,
    )  # fmt: skip
    for table, frame in (("accounts", accounts), ("positions", POSITIONS_SCHEMA.to_frame())):
        path = home / "lake" / table / f"date={day}" / f"snapshot-{snapshot_ns}-all.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)


def _statement(home: Path, date: str, account: int, rows: list[str]) -> None:
    folder = home / "reports" / date / "statements" / str(account)
    folder.mkdir(parents=True)
    header = "currency,opening_balance,deposits,withdrawals,realized_pnl,commission,financing,"
    header += "closing_balance,unrealized_pnl,equity"
    (folder / "summary.csv").write_text("\n".join([header, *rows]) + "\n")


def test_views_when_the_lake_has_ticks_then_bars_floor_to_the_minute(tmp_path: Path) -> None:
    # Arrange
    ticks = _lake(tmp_path)
    con, views = open_lake(tmp_path)

    # Act
    _, counted = query(con, "SELECT count(*) FROM ticks")
    _, rejected = query(con, "SELECT reason, count(*) FROM ticks_rejected GROUP BY reason")
    _, bars = query(
        con,
        "SELECT bucket_ns, open, high, low, close, ticks FROM bars_1m "
        "WHERE symbol = 'EUR/USD' ORDER BY bucket_ns",
    )

    # Assert
    ten = DAY_NS + 10 * 3_600 * 10**9
    assert counted == [(ticks.height,)]
    assert rejected == [("spike", 1)]
    assert bars == [
        (ten, 108_000, 108_900, 108_000, 108_900, 2),
        (ten + MINUTE, 107_000, 107_100, 107_000, 107_100, 2),
    ]
    assert {"ticks", "ticks_rejected", "bars_1m", "positions", "accounts"} <= {
        v.name for v in views
    }


def test_views_when_snapshots_and_statements_exist_then_latest_and_exact_decimals(
    tmp_path: Path,
) -> None:
    # Arrange
    _snapshot(tmp_path, DAY_NS + 1, equity=100)
    _snapshot(tmp_path, DAY_NS + 2, equity=250)
    _statement(tmp_path, "2026-03-02", 7, ["USD,0.10,0,0,0.20,0,0,0.30,0,0.30"])
    _statement(tmp_path, "2026-03-03", 7, ["USD,0.30,0,0,0.000000001,0,0,0.30,0,0.30"])
    con, _ = open_lake(tmp_path)

    # Act
    _, latest = query(con, "SELECT account_id, equity FROM latest_accounts")
    _, sums = query(
        con,
        "SELECT report_date, account_id, opening_balance + realized_pnl FROM statements "
        "ORDER BY report_date",
    )

    # Assert
    assert latest == [(7, 250)]
    assert sums == [
        ("2026-03-02", "7", Decimal("0.30")),
        ("2026-03-03", "7", Decimal("0.300000001")),
    ]


def test_views_when_the_lake_is_empty_then_every_view_exists_with_no_rows(tmp_path: Path) -> None:
    # Arrange
    con, views = open_lake(tmp_path)

    # Act
    counts = {v.name: query(con, f'SELECT count(*) FROM "{v.name}"')[1] for v in views}
    columns, _ = query(con, "SELECT * FROM ticks")

    # Assert
    assert counts and all(c == [(0,)] for c in counts.values())
    assert columns[:3] == ["symbol", "kind", "ts_ns"]
    assert "date" in columns


def test_sql_command_when_one_query_is_given_then_prints_its_table(tmp_path: Path) -> None:
    # Arrange
    _lake(tmp_path)

    # Act
    result = runner.invoke(
        app, ["sql", "--home", str(tmp_path), "-c", "SELECT symbol, max(bid) AS top FROM ticks "
              "GROUP BY symbol ORDER BY symbol"],
    )  # fmt: skip

    # Assert
    assert result.exit_code == 0, result.output
    assert "GBP/USD" in result.output and "126001" in result.output
    assert "108900" in result.output
    assert "2 rows" in result.output


def test_sql_command_when_the_query_is_wrong_then_one_line_and_exit_1(tmp_path: Path) -> None:
    # Act
    result = runner.invoke(app, ["sql", "--home", str(tmp_path), "-c", "SELECT * FROM nowhere"])

    # Assert
    assert result.exit_code == 1
    assert "query failed" in result.output
    assert "Traceback" not in result.output


def test_sql_command_when_the_home_does_not_exist_then_exit_2(tmp_path: Path) -> None:
    # Act
    result = runner.invoke(app, ["sql", "--home", str(tmp_path / "none"), "-c", "SELECT 1"])

    # Assert
    assert result.exit_code == 2
    assert "no data directory" in result.output


def test_sql_prompt_when_lines_are_typed_then_runs_each_until_quit(tmp_path: Path) -> None:
    # Arrange
    _lake(tmp_path)

    # Act
    result = runner.invoke(
        app,
        ["sql", "--home", str(tmp_path)],
        input="SELECT 40 + 2 AS answer\nSELECT * FROM nowhere\n.quit\nSELECT 99 AS unseen\n",
    )

    # Assert
    assert result.exit_code == 0, result.output
    assert "bars_1m" in result.output  # the views, listed first
    assert "42" in result.output
    assert "query failed" in result.output  # a bad line does not end the prompt
    assert "unseen" not in result.output
