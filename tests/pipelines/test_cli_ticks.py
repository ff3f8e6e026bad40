"""``bourse pipelines ticks``: the contract checked from outside."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.ticks import lake
from serving.cli import app
from tests.pipelines.test_flow import BINANCE_TRADES, HISTDATA, TRUEFX

runner = CliRunner()


def _count(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│?\s*([\d,]+)", output)
    assert match, f"no {label!r} in:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_cli_ticks_when_a_vendor_file_replays_then_counts_by_reason_and_lake(
    tmp_path: Path,
) -> None:
    # Act
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(TRUEFX),
                                 "--format", "truefx", "--home", str(tmp_path)])  # fmt: skip
    # Assert
    assert result.exit_code == 0, result.output
    assert _count(result.output, "accepted") == 999
    assert _count(result.output, "rejected: locked") == 1
    assert lake.read(tmp_path / "lake").height == 999


def test_cli_ticks_when_a_directory_then_every_file_of_the_format(tmp_path: Path) -> None:
    # Arrange
    src = tmp_path / "src"
    src.mkdir()
    (src / "btcusdt-trades-a.parquet").write_bytes(BINANCE_TRADES.read_bytes())
    (src / "btcusdt-trades-b.parquet").write_bytes(BINANCE_TRADES.read_bytes())
    # Act
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(src), "--format",
                                 "binance-trades", "--home", str(tmp_path / "h")])  # fmt: skip
    # Assert
    assert result.exit_code == 0, result.output
    assert _count(result.output, "accepted") == 2 * 2_001


@pytest.mark.parametrize(
    ("given", "codec"), [("zstd:1", "ZSTD"), ("snappy", "SNAPPY"), ("lz4", "LZ4")]
)
def test_cli_ticks_when_a_lake_compression_is_given_then_the_files_use_it_and_read_back(
    tmp_path: Path, given: str, codec: str
) -> None:
    import pyarrow.parquet as pq

    # Act
    args = ["--source", str(TRUEFX), "--format", "truefx", "--lake-compression", given]
    result = runner.invoke(app, ["pipelines", "ticks", "--home", str(tmp_path), *args])
    # Assert: written with that codec, and read back whole by Polars and by pyarrow
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "lake" / lake.ACCEPTED_DIR).rglob("*.parquet"))
    assert files
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression.startswith(codec)
    assert lake.read(tmp_path / "lake").height == 999
    assert sum(pq.read_table(f).num_rows for f in files) == 999


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "nowhere.csv", "--format", "histdata"], "nowhere.csv"),
        (["--source", str(TRUEFX), "--format", "bloomberg"], "--format must be one of"),
        (["--source", str(TRUEFX), "--format", "truefx", "--sink", "kafka"], "unknown sink"),
        (["--source", "synthetic", "--ticks", "10"], "needs --symbols"),
        (["--source", "synthetic", "--symbols", "EURUSD"], "--ticks"),
        (["--source", "synthetic", "--symbols", "NOPE", "--ticks", "5"], "NOPE"),
        (
            ["--source", str(TRUEFX), "--format", "truefx", "--inject", "0.01"],
            "--inject applies to the synthetic source only",
        ),
        (
            ["--source", "synthetic", "--symbols", "EURUSD", "--ticks", "5", "--inject", "0.5"],
            "--inject must be within [0, 0.05]",
        ),
        (
            ["--source", str(TRUEFX), "--format", "truefx", "--lake-compression", "brotli"],
            "unknown lake compression 'brotli'",
        ),
        (
            ["--source", str(TRUEFX), "--format", "truefx", "--lake-compression", "snappy:3"],
            "a compression level is for zstd only",
        ),
    ],
)
def test_cli_ticks_when_arguments_are_wrong_then_exit_2_with_a_clear_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["pipelines", "ticks", "--home", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "lake").exists()


def _nothing_written(home: Path) -> None:
    assert not (home / "lake").exists()
    assert not (home / "pipelines").exists()


@pytest.mark.parametrize(
    ("source", "fmt", "expected", "seen"),
    [
        (TRUEFX, "histdata", "expected HistData CSV rows", "saw rows 'timestamp,bid,ask'"),
        (HISTDATA, "truefx", "expected TrueFX CSV", "saw rows '20200101 170000065"),
        (BINANCE_TRADES, "truefx", "expected TrueFX CSV", "saw a Parquet file"),
        (
            BINANCE_TRADES,
            "binance-quotes",
            "expected Parquet with columns timestamp, bid, ask",
            "saw columns [",
        ),
        (TRUEFX, "parquet", "expected Parquet", "saw not Parquet: 'timestamp,bid,ask'"),
    ],
)
def test_cli_ticks_when_the_format_is_wrong_then_exit_2_naming_it_and_nothing_written(
    tmp_path: Path, source: Path, fmt: str, expected: str, seen: str
) -> None:
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(source), "--format", fmt,
                                 "--home", str(tmp_path), "--symbol", "EURUSD"])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"not a {fmt} file: {expected}" in lines[0]
    assert seen in lines[0]
    _nothing_written(tmp_path)


def test_cli_ticks_when_a_directory_mixes_formats_then_says_what_it_skipped(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "eurusd.dat").write_bytes(HISTDATA.read_bytes())  # histdata, whatever the name
    (src / "usdjpy.csv").write_bytes(TRUEFX.read_bytes())
    (src / "readme.csv").write_text("these are EUR/USD ticks\n")
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(src), "--format",
                                 "histdata", "--home", str(tmp_path / "h")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "skipped usdjpy.csv: a truefx file" in result.output
    assert "skipped readme.csv: not histdata" in result.output
    assert _count(result.output, "accepted") == 9_500


def test_cli_ticks_when_the_file_names_no_symbol_then_asks_for_symbol(tmp_path: Path) -> None:
    src = tmp_path / "ticks.csv"
    src.write_bytes(HISTDATA.read_bytes())
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(src), "--format",
                                 "histdata", "--home", str(tmp_path / "h")])  # fmt: skip
    assert result.exit_code == 2
    assert "give it with --symbol" in result.output and "--symbols" not in result.output
    _nothing_written(tmp_path / "h")


def test_cli_ticks_when_redis_sink_has_no_redis_then_one_line_exit_2_no_recovery_folder(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(TRUEFX), "--format",
                                 "truefx", "--home", str(tmp_path), "--sink", "lake,redis",
                                 "--redis-url", url])  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"Redis at {url} is not reachable" in lines[0], result.output
    assert "panic" not in result.output and "Traceback" not in result.output
    _nothing_written(tmp_path)


def test_cli_ticks_when_synthetic_with_inject_then_rejects_by_reason_and_labels(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["pipelines", "ticks", "--source", "synthetic", "--symbols",
                                 "EURUSD,BTCUSDT", "--ticks", "20000", "--seed", "7",
                                 "--inject", "0.01", "--home", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    for reason in ("spike", "crossed", "duplicate", "out_of_order", "future", "wide_spread"):
        assert _count(result.output, f"rejected: {reason}") > 0
    match = re.search(
        r"([\d,]+) labelled bad ticks injected, ([\d,]+) of them rejected", result.output
    )
    assert match, result.output
    assert match.group(1) == match.group(2) == f"{_count(result.output, 'rejected'):,}"
    rejected = lake.read(tmp_path / "lake", rejected=True)
    assert rejected.height == _count(result.output, "rejected")
