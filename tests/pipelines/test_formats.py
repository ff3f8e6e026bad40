"""Vendor files normalized to the tick schema, on the real samples in tests/data/market."""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks import formats_csv
from pipelines.ticks.formats import (
    FORMATS,
    REJECT_SCHEMA,
    FeedError,
    FileFeed,
    RawBatch,
    discover,
    read_batches,
    select_files,
    source_name,
)
from pipelines.ticks.schema import SIZE_SCALE, TICK_SCHEMA
from trading.catalogue import Catalogue, default_catalogue
from trading.instrument import Instrument

MARKET = Path(__file__).resolve().parent.parent / "data" / "market"
HISTDATA = MARKET / "eurusd-quotes-histdata-2020-01.csv"
TRUEFX = MARKET / "usdjpy-quotes-truefx-2013-01.csv"
BINANCE_QUOTES = MARKET / "btcusdt-quotes-binance.parquet"
BINANCE_TRADES = MARKET / "btcusdt-trades-binance.parquet"
SAMPLES = [
    (HISTDATA, "histdata", "EUR/USD", 9_500),
    (TRUEFX, "truefx", "USD/JPY", 1_000),
    (BINANCE_QUOTES, "binance-quotes", "BTC/USDT", 451),
    (BINANCE_TRADES, "binance-trades", "BTC/USDT", 2_001),
]
SAMPLE_IDS = [fmt for _, fmt, _, _ in SAMPLES]


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return default_catalogue()


def only_feed(path: Path, fmt: str, cat: Catalogue, symbol: str | None = None) -> FileFeed:
    feeds = discover(path, fmt, cat, symbol)
    assert len(feeds) == 1, feeds
    return feeds[0]


def read_all(
    feed: FileFeed, cat: Catalogue, **kwargs: int
) -> tuple[pl.DataFrame, pl.DataFrame, list[RawBatch]]:
    batches = list(read_batches(feed, cat, **kwargs))
    ticks = pl.concat([b.ticks for b in batches]) if batches else pl.DataFrame(schema=TICK_SCHEMA)
    rejects = (
        pl.concat([b.rejects for b in batches]) if batches else pl.DataFrame(schema=REJECT_SCHEMA)
    )
    return ticks, rejects, batches


def ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


def vendor_text(value: float) -> str:
    """A Parquet float as the decimal the vendor meant: 15 significant digits, which a
    float64 holds exactly (0.006314999999999999 is 0.006315)."""
    return f"{value:.15g}"


def scaled(inst: Instrument, text: str) -> int:
    """The vendor's decimal text in price units, to the nearest tick (halves up)."""
    return inst.price_to_int(inst.round_price_to_tick(Decimal(text), ROUND_HALF_UP))


def scaled_size(text: str) -> int:
    """A vendor size in units of the underlying, in SIZE_SCALE-ths (halves up)."""
    return int((Decimal(text) * SIZE_SCALE).quantize(Decimal(1), ROUND_HALF_UP))


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


# --- the real samples ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "fmt", "symbol", "rows"), SAMPLES, ids=SAMPLE_IDS)
def test_sample_when_read_whole_then_every_row_is_a_tick_in_schema_with_seq_0_to_n(
    cat: Catalogue, path: Path, fmt: str, symbol: str, rows: int
) -> None:
    feed = only_feed(path, fmt, cat)

    ticks, rejects, batches = read_all(feed, cat)

    assert (feed.symbol, feed.source, feed.fmt) == (symbol, source_name(path), fmt)
    assert feed.source.startswith(f"{path.name}@")
    assert feed.key == f"{feed.source}|{symbol}"
    assert ticks.schema == pl.Schema(TICK_SCHEMA)
    assert rejects.height == 0
    assert ticks.height == rows
    assert ticks["source_seq"].to_list() == list(range(rows))
    assert ticks["symbol"].unique().to_list() == [symbol]
    assert ticks["source"].unique().to_list() == [feed.source]
    assert (ticks["recv_ns"] == ticks["ts_ns"]).all()
    assert ticks["ts_ns"].null_count() == 0
    assert batches[-1].next_seq == rows


@pytest.mark.parametrize(("path", "fmt", "symbol", "rows"), SAMPLES, ids=SAMPLE_IDS)
def test_sample_when_read_in_small_batches_then_batches_are_exact_runs_of_rows(
    cat: Catalogue, path: Path, fmt: str, symbol: str, rows: int
) -> None:
    feed = only_feed(path, fmt, cat)

    batches = list(read_batches(feed, cat, batch_rows=128))

    sizes = [b.ticks.height + b.rejects.height for b in batches]
    assert sizes[:-1] == [128] * (len(batches) - 1)
    assert 0 < sizes[-1] <= 128
    assert [b.next_seq for b in batches] == [min(128 * (i + 1), rows) for i in range(len(sizes))]
    assert batches[1].ticks["source_seq"][0] == 128


@pytest.mark.parametrize(("path", "fmt", "symbol", "rows"), SAMPLES, ids=SAMPLE_IDS)
def test_sample_when_resumed_at_a_batch_boundary_then_equals_tail_of_full_read(
    cat: Catalogue, path: Path, fmt: str, symbol: str, rows: int
) -> None:
    feed = only_feed(path, fmt, cat)
    batch_rows = 100
    full = list(read_batches(feed, cat, batch_rows=batch_rows))

    for k in (1, 3, len(full) - 1):
        resumed = list(read_batches(feed, cat, start_seq=k * batch_rows, batch_rows=batch_rows))

        assert len(resumed) == len(full) - k
        for mine, theirs in zip(resumed, full[k:], strict=True):
            assert mine.ticks.equals(theirs.ticks)
            assert mine.rejects.equals(theirs.rejects)
            assert mine.next_seq == theirs.next_seq


def test_histdata_when_first_row_then_est_without_dst_is_2200_utc_to_the_millisecond(
    cat: Catalogue,
) -> None:
    ticks, _, _ = read_all(only_feed(HISTDATA, "histdata", cat), cat)

    # 20200101 170000065 in EST (UTC-5, HistData's convention) is 22:00:00.065 UTC
    assert ticks["ts_ns"][0] == ns(datetime(2020, 1, 1, 22, 0, 0, 65_000, tzinfo=UTC))
    assert ticks["ts_ns"][0] == 1_577_916_000_065_000_000
    assert ticks["bid"][0] == 112_120  # 1.121200 at 5 decimals
    assert ticks["ask"][0] == 112_172
    assert (
        ticks.select("bid_size", "ask_size", "price", "qty", "trade_id").null_count().row(0)
        == (ticks.height,) * 5
    )


def test_histdata_when_summer_row_then_still_utc_minus_5_not_edt(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = write(tmp_path / "eurusd-july.csv", "20200701 120000000,1.12345,1.12350,0\n")

    ticks, _, _ = read_all(only_feed(path, "histdata", cat), cat)

    assert ticks["ts_ns"].to_list() == [ns(datetime(2020, 7, 1, 17, 0, tzinfo=UTC))]


def test_histdata_when_every_row_compared_to_the_raw_text_then_prices_are_exact(
    cat: Catalogue,
) -> None:
    inst = cat.get("EUR/USD")
    with HISTDATA.open(newline="") as file:
        raw = list(csv.reader(file))

    ticks, _, _ = read_all(only_feed(HISTDATA, "histdata", cat), cat)

    assert ticks["bid"].to_list() == [scaled(inst, row[1]) for row in raw]
    assert ticks["ask"].to_list() == [scaled(inst, row[2]) for row in raw]
    stamp = raw[-1][0]  # the last row's EST time, +5 h
    expected = datetime.strptime(stamp + "000", "%Y%m%d %H%M%S%f").replace(tzinfo=UTC)
    assert ticks["ts_ns"][-1] == ns(expected) + 5 * 3600 * 10**9


def test_truefx_when_first_row_then_iso_utc_time_and_usdjpy_prices_exact(
    cat: Catalogue,
) -> None:
    inst = cat.get("USD/JPY")
    with TRUEFX.open(newline="") as file:
        raw = list(csv.DictReader(file))

    ticks, _, _ = read_all(only_feed(TRUEFX, "truefx", cat), cat)

    assert ticks["ts_ns"][0] == ns(datetime(2013, 1, 1, 22, 0, 0, 295_000, tzinfo=UTC))
    assert (ticks["bid"][0], ticks["ask"][0]) == (86_655, 86_728)
    assert ticks["bid"].to_list() == [scaled(inst, r["bid"]) for r in raw]
    assert ticks["ask"].to_list() == [scaled(inst, r["ask"]) for r in raw]
    assert ticks["ts_ns"].to_list() == [ns(datetime.fromisoformat(r["timestamp"])) for r in raw]


def test_truefx_when_headerless_original_layout_then_symbol_from_first_column(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "truefx-2013-01.csv",
        "EUR/USD,20130101 22:00:00.295,1.31827,1.31832\n"
        "EUR/USD,20130101 22:00:01.001,1.31828,1.31833\n",
    )

    feed = only_feed(path, "truefx", cat)
    ticks, rejects, _ = read_all(feed, cat)

    assert feed.symbol == "EUR/USD"
    assert rejects.height == 0
    assert ticks["ts_ns"][0] == ns(datetime(2013, 1, 1, 22, 0, 0, 295_000, tzinfo=UTC))
    assert ticks["bid"].to_list() == [131_827, 131_828]
    assert ticks["ask"].to_list() == [131_832, 131_833]
    assert ticks["source_seq"].to_list() == [0, 1]  # no header: the first line is row 0


def test_binance_quotes_when_read_then_ms_to_ns_and_prices_and_sizes_quantized(
    cat: Catalogue,
) -> None:
    inst = cat.get("BTC/USDT")
    raw = pl.read_parquet(BINANCE_QUOTES)

    ticks, _, _ = read_all(only_feed(BINANCE_QUOTES, "binance-quotes", cat), cat)

    assert ticks["ts_ns"].to_list() == [
        int(t.timestamp() * 1000) * 1_000_000 for t in raw["timestamp"]
    ]
    assert ticks["ts_ns"][0] == ns(datetime(2021, 1, 8, 0, 0, 1, 76_000, tzinfo=UTC))
    assert (ticks["bid"][0], ticks["ask"][0]) == (3_943_299, 3_943_362)  # 39432.99 / 39433.62
    for row in range(raw.height):
        for side in ("bid", "ask"):
            assert ticks[side][row] == scaled(inst, vendor_text(raw[side][row]))
            size = f"{side}_size"
            assert ticks[size][row] == scaled_size(vendor_text(raw[size][row]))
    assert ticks["bid_size"][1] == 200_000_000  # 2.0 BTC in SIZE_SCALE-ths (satoshis)
    assert ticks.select("price", "qty", "trade_id").null_count().row(0) == (451,) * 3


def test_binance_trades_when_read_then_trades_with_price_qty_and_string_trade_id(
    cat: Catalogue,
) -> None:
    inst = cat.get("BTC/USDT")
    raw = pl.read_parquet(BINANCE_TRADES)

    ticks, _, _ = read_all(only_feed(BINANCE_TRADES, "binance-trades", cat), cat)

    assert ticks["kind"].unique().to_list() == ["trade"]
    assert ticks["trade_id"].to_list() == [str(t) for t in raw["trade_id"]]
    assert ticks["price"].to_list() == [scaled(inst, vendor_text(p)) for p in raw["price"]]
    assert ticks["qty"].to_list() == [scaled_size(vendor_text(q)) for q in raw["quantity"]]
    assert ticks["qty"][0] == 26_300  # 0.000263 BTC in satoshis
    assert (ticks["qty"] > 0).all()  # the 0.000001 BTC prints stay prints (100 satoshis)
    assert ticks.select("bid", "ask", "bid_size", "ask_size").null_count().row(0) == (2001,) * 4


def test_quantization_when_tick_coarser_than_precision_then_prices_on_tick_grid(
    cat: Catalogue,
) -> None:
    coarse = dataclasses.replace(cat.get("EUR/USD"), tick_size=Decimal("0.001"))
    custom = Catalogue([coarse], cat.sessions, cat.leverage_classes)
    assert coarse.tick_int == 100
    with HISTDATA.open(newline="") as file:
        raw = list(csv.reader(file))

    ticks, _, _ = read_all(only_feed(HISTDATA, "histdata", custom), custom)

    assert (ticks["bid"] % 100 == 0).all()
    assert (ticks["ask"] % 100 == 0).all()
    assert ticks["bid"].to_list() == [scaled(coarse, row[1]) for row in raw]
    assert ticks["bid"][0] == 112_100  # 1.121200 -> 1.121
    assert ticks["ask"][0] == 112_200  # 1.121720 -> 1.122


def test_csv_reader_when_blocks_are_tiny_then_same_batches_as_one_block(
    cat: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = only_feed(HISTDATA, "histdata", cat)
    whole = list(read_batches(feed, cat, start_seq=1_000, batch_rows=700))

    monkeypatch.setattr(formats_csv, "_BLOCK_BYTES", 97)  # lines straddle every block
    tiny = list(read_batches(feed, cat, start_seq=1_000, batch_rows=700))

    assert len(tiny) == len(whole)
    assert all(a.ticks.equals(b.ticks) for a, b in zip(tiny, whole, strict=True))


# --- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("eurusd-quotes-histdata-2020-01.csv", "EUR/USD"),
        ("DAT_ASCII_EURUSD_T_202001.csv", "EUR/USD"),
        ("btcusdt-trades-binance.parquet", "BTC/USDT"),
        ("eur-usd-2020.csv", "EUR/USD"),
        ("USDJPY-2013-01.csv", "USD/JPY"),
    ],
)
def test_discover_when_no_symbol_given_then_guessed_from_file_name(
    cat: Catalogue, tmp_path: Path, name: str, symbol: str
) -> None:
    source = BINANCE_TRADES if name.endswith(".parquet") else HISTDATA
    path = tmp_path / name
    path.write_bytes(source.read_bytes())

    fmt = "binance-trades" if name.endswith(".parquet") else "histdata"
    assert only_feed(path, fmt, cat).symbol == symbol


def test_discover_when_symbol_alias_given_then_canonical_symbol(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(HISTDATA.read_bytes())

    assert only_feed(path, "histdata", cat, symbol="eur_usd").symbol == "EUR/USD"


def test_discover_when_directory_then_each_file_of_the_format_sorted_by_name(
    cat: Catalogue, tmp_path: Path
) -> None:
    for name in ("gbpusd-b.csv", "eurusd-a.csv"):
        write(tmp_path / name, "20200101 170000065,1.12120,1.12172,0\n")
    write(tmp_path / "notes.txt", "not a tick file")

    feeds = discover(tmp_path, "histdata", cat)

    assert [(f.source.split("@")[0], f.symbol) for f in feeds] == [
        ("eurusd-a.csv", "EUR/USD"),
        ("gbpusd-b.csv", "GBP/USD"),
    ]
    assert len({f.key for f in feeds}) == 2


def test_select_files_when_a_directory_mixes_formats_then_picked_by_content_and_skips_said(
    tmp_path: Path,
) -> None:
    write(tmp_path / "eurusd-a.csv", "20200101 170000065,1.12120,1.12172,0\n")
    write(tmp_path / "eurusd-b.txt", "20200101 170000065,1.12120,1.12172,0\n")  # by content
    (tmp_path / "usdjpy.csv").write_bytes(TRUEFX.read_bytes())
    (tmp_path / "btc.parquet").write_bytes(BINANCE_TRADES.read_bytes())
    write(tmp_path / "notes.csv", "not a tick file")

    files, skipped = select_files(tmp_path, "histdata")

    assert [p.name for p in files] == ["eurusd-a.csv", "eurusd-b.txt"]
    why = {p.name: reason for p, reason in skipped}
    assert why["usdjpy.csv"] == "a truefx file"
    assert why["btc.parquet"] == "a binance-trades file"
    assert why["notes.csv"].startswith("not histdata: rows 'not a tick file'")


@pytest.mark.parametrize(
    ("source", "fmt", "seen"),
    [
        (TRUEFX, "histdata", "rows 'timestamp,bid,ask'; '2013-01-01 22:00:00.295000+00:00"),
        (HISTDATA, "truefx", "rows '20200101 170000065"),
        (BINANCE_TRADES, "histdata", "a Parquet file"),
        (HISTDATA, "binance-quotes", "not Parquet: '20200101 170000065"),
        (BINANCE_TRADES, "binance-quotes", "columns ["),
        (BINANCE_QUOTES, "parquet", "columns ["),
    ],
)
def test_discover_when_a_file_is_of_another_format_then_error_names_both(
    cat: Catalogue, source: Path, fmt: str, seen: str
) -> None:
    with pytest.raises(FeedError) as error:
        discover(source, fmt, cat, symbol="EUR/USD")
    message = str(error.value)
    assert f"not a {fmt} file: expected " in message
    assert f"saw {seen}" in message


def test_discover_when_a_file_is_of_another_format_then_the_right_one_is_suggested(
    cat: Catalogue,
) -> None:
    with pytest.raises(FeedError, match="it looks like --format truefx"):
        discover(TRUEFX, "histdata", cat)


def test_source_name_when_two_files_share_a_name_then_they_are_two_sources(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a" / "eurusd.csv", tmp_path / "b" / "eurusd.csv"
    a.parent.mkdir()
    b.parent.mkdir()
    write(a, "20200101 170000065,1.12120,1.12172,0\n")
    write(b, "20200101 170000066,1.12120,1.12172,0\n")
    assert source_name(a) != source_name(b)
    assert source_name(a) == source_name(a)
    assert source_name(a).startswith("eurusd.csv@")


def test_discover_when_no_symbol_in_the_name_then_asks_for_symbol(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "ticks.csv"
    write(path, "20200101 170000065,1.12120,1.12172,0\n")
    with pytest.raises(FeedError, match=r"give it with --symbol\b") as error:
        discover(path, "histdata", cat)
    assert "--symbols" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "fmt", "symbol", "message"),
    [
        ("eurusd.csv", "metatrader", None, "unknown format"),
        ("missing-eurusd.csv", "histdata", None, "no such file"),
        ("ticks.csv", "histdata", None, "no catalogue symbol"),
        ("eurusd.csv", "histdata", "DOGE/EUR", "unknown symbol"),
        ("eurusd-gbpusd.csv", "histdata", None, "several symbols"),
    ],
)
def test_discover_when_format_file_or_symbol_is_wrong_then_feed_error_names_the_file(
    cat: Catalogue, tmp_path: Path, name: str, fmt: str, symbol: str | None, message: str
) -> None:
    if not name.startswith("missing"):
        write(tmp_path / name, "20200101 170000065,1.12120,1.12172,0\n")

    with pytest.raises(FeedError, match=message) as error:
        discover(tmp_path / name, fmt, cat, symbol)

    assert name in str(error.value)


def test_formats_when_listed_then_the_five_cli_names() -> None:
    assert FORMATS == ("histdata", "truefx", "binance-quotes", "binance-trades", "parquet")


# --- bad input ------------------------------------------------------------------------------

GOOD = "20200101 170000065,1.121200,1.121720,0"


def test_histdata_when_rows_malformed_then_rejected_with_file_row_and_text_rest_parsed(
    cat: Catalogue, tmp_path: Path
) -> None:
    lines = [
        GOOD,
        "20200101 170000065,1.121200,1.121720",  # 1: a field short
        "20200101 170000065,1.121200,1.121720,0,9",  # 2: a field too many
        "20200101 170000065,abc,1.121720,0",  # 3: non-numeric bid
        "20201301 170000065,1.121200,1.121720,0",  # 4: month 13
        "20200101 250000065,1.121200,1.121720,0",  # 5: hour 25
        "2020-01-01 17:00:00,1.121200,1.121720,0",  # 6: another time layout
        "",  # 7: an empty line
        "20200101 170000065,1.121200,nan,0",  # 8: not a finite number
        GOOD,  # 9
    ]
    path = write(tmp_path / "eurusd-bad.csv", "\n".join(lines) + "\n")

    ticks, rejects, batches = read_all(only_feed(path, "histdata", cat), cat, batch_rows=4)

    assert ticks["source_seq"].to_list() == [0, 9]
    assert rejects["source_seq"].to_list() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rejects["reason"].unique().to_list() == ["malformed"]
    assert rejects["symbol"].unique().to_list() == ["EUR/USD"]
    assert rejects["kind"].unique().to_list() == ["quote"]
    assert rejects["source"].str.starts_with("eurusd-bad.csv@").all()
    details = rejects["detail"].to_list()
    for seq, detail in zip(rejects["source_seq"], details, strict=True):
        assert detail.startswith(f"eurusd-bad.csv row {seq}: ")
        assert lines[seq] in detail  # the raw text
    assert "expected 4 fields, got 3" in details[0]
    assert "expected 4 fields, got 5" in details[1]
    assert "bad bid abc" in details[2]
    assert "bad timestamp 20201301" in details[3]
    assert "bad timestamp 20200101 25" in details[4]
    assert "bad ask nan" in details[7]
    assert rejects["bid"][2] is None and rejects["ask"][2] == 112_172  # what parsed is kept
    assert rejects["ts_ns"][2] == 1_577_916_000_065_000_000
    assert batches[-1].next_seq == len(lines)


def test_histdata_when_price_field_empty_then_tick_with_null_price_not_malformed(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = write(tmp_path / "eurusd-gap.csv", "20200101 170000065,,1.121720,0\n")

    ticks, rejects, _ = read_all(only_feed(path, "histdata", cat), cat)

    assert rejects.height == 0
    assert ticks["bid"].to_list() == [None]
    assert ticks["ask"].to_list() == [112_172]


def test_histdata_when_file_truncated_mid_row_then_last_row_malformed_and_rest_kept(
    cat: Catalogue, tmp_path: Path
) -> None:
    data = HISTDATA.read_bytes()
    cut = data.index(b"\n", 20_000) + 30  # 30 bytes into a row, no newline after
    path = tmp_path / HISTDATA.name
    path.write_bytes(data[:cut])
    rows = data[:cut].count(b"\n") + 1

    ticks, rejects, _ = read_all(only_feed(path, "histdata", cat), cat, batch_rows=100)

    assert ticks.height == rows - 1
    assert rejects["source_seq"].to_list() == [rows - 1]
    assert rejects["reason"].to_list() == ["malformed"]
    partial = data[:cut].rsplit(b"\n", 1)[1].decode()
    assert partial.count(",") < 3  # the cut left a row short of fields
    assert rejects["detail"][0].startswith(f"{HISTDATA.name} row {rows - 1}: expected 4 fields")
    assert rejects["detail"][0].endswith(partial)


def test_truefx_when_row_bad_then_malformed_with_row(cat: Catalogue, tmp_path: Path) -> None:
    path = write(
        tmp_path / "usdjpy.csv",
        "timestamp,bid,ask\n"
        "2013-01-01 22:00:00.295000+00:00,86.655,86.728\n"
        "yesterday,86.655,86.728\n"
        "2013-01-01 22:00:01+01:00,86.655,86.728\n",
    )

    ticks, rejects, _ = read_all(only_feed(path, "truefx", cat), cat)

    assert ticks["source_seq"].to_list() == [0, 2]  # the header is not a row
    assert ticks["ts_ns"][1] == ns(datetime(2013, 1, 1, 21, 0, 1, tzinfo=UTC))  # +01:00
    assert rejects["source_seq"].to_list() == [1]
    assert rejects["detail"][0].startswith("usdjpy.csv row 1: bad timestamp yesterday")


@pytest.mark.parametrize(
    "stamp",
    [
        "2013-01-01 22:00:00.295000+00:00",
        "2013-01-01T22:00:00.295Z",
        "2013-01-01 22:00:00.295+0000",
        "2013-01-01 23:00:00.295+01:00",
        "2013-01-01 22:00:00.295",  # no offset: UTC
        "2013-01-01T22:00:00.295",
    ],
)
def test_truefx_when_iso_time_spelled_otherwise_then_same_utc_instant(
    cat: Catalogue, tmp_path: Path, stamp: str
) -> None:
    path = write(tmp_path / "usdjpy.csv", f"timestamp,bid,ask\n{stamp},86.655,86.728\n")

    ticks, rejects, _ = read_all(only_feed(path, "truefx", cat), cat)

    assert rejects.height == 0
    assert ticks["ts_ns"].to_list() == [ns(datetime(2013, 1, 1, 22, 0, 0, 295_000, UTC))]


def test_csv_when_byte_order_mark_and_crlf_line_ends_then_parsed_like_plain_lines(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "usdjpy.csv"
    path.write_bytes(
        b"\xef\xbb\xbftimestamp,bid,ask\r\n"
        b"2013-01-01 22:00:00.295000+00:00,86.655,86.728\r\n"
        b"2013-01-01 22:02:35.907000+00:00,86.657,86.728\r\n"
    )

    ticks, rejects, _ = read_all(only_feed(path, "truefx", cat), cat)

    assert rejects.height == 0
    assert ticks["ask"].to_list() == [86_728, 86_728]
    assert ticks["source_seq"].to_list() == [0, 1]


def test_truefx_when_a_symbol_is_unknown_then_first_feed_rejects_its_rows_as_unknown_symbol(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "mixed.csv",
        "GBP/USD,20130101 22:00:00.100,1.61000,1.61010\n"
        "EUR/USD,20130101 22:00:00.295,1.31827,1.31832\n"
        "FOO/BAR,20130101 22:00:00.300,1.5,1.6\n"
        "EURUSD,20130101 22:00:00.400,1.31828,1.31833\n"
        "FOO/BAR,garbage\n",
    )

    feeds = discover(path, "truefx", cat)
    read = {f.symbol: read_all(f, cat, batch_rows=2) for f in feeds}

    assert [(f.symbol, f.unknown_symbols) for f in feeds] == [
        ("EUR/USD", True),
        ("GBP/USD", False),
    ]
    eur_ticks, eur_rejects, _ = read["EUR/USD"]
    assert eur_ticks["source_seq"].to_list() == [1, 3]  # the file's row numbers: gaps
    assert eur_ticks["symbol"].unique().to_list() == ["EUR/USD"]
    assert eur_rejects["source_seq"].to_list() == [2, 4]
    assert eur_rejects["reason"].to_list() == ["unknown_symbol", "malformed"]
    assert eur_rejects["symbol"].to_list() == ["FOO/BAR", "FOO/BAR"]
    assert eur_rejects["ts_ns"][0] == ns(datetime(2013, 1, 1, 22, 0, 0, 300_000, UTC))
    assert "row 2: unknown symbol 'FOO/BAR'" in eur_rejects["detail"][0]
    assert "row 4: expected 4 fields, got 2" in eur_rejects["detail"][1]
    gbp_ticks, gbp_rejects, _ = read["GBP/USD"]
    assert (gbp_ticks["source_seq"].to_list(), gbp_rejects.height) == ([0], 0)
    one = only_feed(path, "truefx", cat, symbol="eurusd")
    assert (one.symbol, one.unknown_symbols) == ("EUR/USD", True)


def test_truefx_when_no_symbol_of_the_file_is_known_then_feed_error(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = write(tmp_path / "odd.csv", "FOO/BAR,20130101 22:00:00.300,1.5,1.6\n")

    with pytest.raises(FeedError, match=r"odd\.csv: no symbol of the file is in the catalogue"):
        discover(path, "truefx", cat)


def test_parquet_when_truncated_then_feed_error_names_the_file(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "btcusdt-quotes.parquet"
    path.write_bytes(BINANCE_QUOTES.read_bytes()[:5_000])
    feed = FileFeed(path, "binance-quotes", "BTC/USDT", path.name)

    with pytest.raises(FeedError, match=r"btcusdt-quotes\.parquet"):
        discover(path, "binance-quotes", cat)
    with pytest.raises(FeedError, match=r"btcusdt-quotes\.parquet"):
        list(read_batches(feed, cat))


def test_binance_quotes_when_prices_null_or_nan_then_ticks_with_null_price(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "btcusdt-quotes.parquet"
    pl.DataFrame(
        {
            "timestamp": [1_610_064_001_076, 1_610_064_001_157, 1_610_064_001_257],  # int ms
            "bid": [39432.99, None, float("nan")],
            "ask": [39433.62, 39433.6, 39433.6],
            "bid_size": [0.0031, 2.0, float("nan")],
            "ask_size": [0.066851, 0.018027, 0.018027],
        }
    ).write_parquet(path)

    ticks, rejects, _ = read_all(only_feed(path, "binance-quotes", cat), cat)

    assert rejects.height == 0
    assert ticks["bid"].to_list() == [3_943_299, None, None]
    assert ticks["ask"].to_list() == [3_943_362, 3_943_360, 3_943_360]
    assert ticks["bid_size"].to_list() == [310_000, 200_000_000, None]
    assert ticks["ts_ns"][0] == 1_610_064_001_076_000_000


def test_binance_quotes_when_several_symbols_then_one_feed_each_with_file_row_numbers(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "book.parquet"
    pl.DataFrame(
        {
            "timestamp": [1_610_064_000_001 + i for i in range(4)],
            "symbol": ["BTC/USDT", "ETHUSDT", "BTCUSDT", "NOPE"],
            "bid": [39432.99, 1200.5, 39433.0, 1.0],
            "ask": [39433.62, 1200.6, 39434.0, 2.0],
        }
    ).write_parquet(path)

    feeds = discover(path, "binance-quotes", cat)
    seqs = {f.symbol: read_all(f, cat) for f in feeds}

    assert sorted(seqs) == ["BTC/USDT", "ETH/USDT"]
    assert seqs["BTC/USDT"][0]["source_seq"].to_list() == [0, 2]
    assert seqs["ETH/USDT"][0]["bid"].to_list() == [120_050]
    assert seqs["ETH/USDT"][1].height == 0
    assert seqs["BTC/USDT"][1]["reason"].to_list() == ["unknown_symbol"]
    assert seqs["BTC/USDT"][1]["source_seq"].to_list() == [3]
    assert seqs["BTC/USDT"][1]["symbol"].to_list() == ["NOPE"]
    assert '"symbol":"NOPE"' in seqs["BTC/USDT"][1]["detail"][0]  # the record, as JSON


def test_binance_trades_when_buyer_maker_is_not_a_boolean_then_malformed(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "btcusdt-trades.parquet"
    pl.DataFrame(
        {
            "timestamp": [1_610_064_000_278, 1_610_064_000_310],
            "trade_id": [553287559, 553287560],
            "price": [39432.48, 39439.44],
            "quantity": [0.000263, 0.004376],
            "buyer_maker": ["True", "maybe"],
        }
    ).write_parquet(path)

    ticks, rejects, _ = read_all(only_feed(path, "binance-trades", cat), cat)

    assert ticks["source_seq"].to_list() == [0]
    assert rejects["source_seq"].to_list() == [1]
    assert rejects["reason"].to_list() == ["malformed"]
    assert "bad buyer_maker maybe" in rejects["detail"][0]
    assert rejects["price"].to_list() == [3_943_944]


# --- the tick Parquet format ------------------------------------------------------------------


def test_parquet_when_lake_file_with_extra_columns_then_round_trips_exactly(
    cat: Catalogue, tmp_path: Path
) -> None:
    ticks, _, _ = read_all(only_feed(BINANCE_TRADES, "binance-trades", cat), cat)
    path = tmp_path / "lake-part.parquet"
    stored = ticks.with_columns(source=pl.lit(path.name)).sort("source_seq", descending=True)
    stored.with_columns(
        day=pl.lit(None, dtype=pl.Date), reason=pl.lit(None, dtype=pl.String), detail=pl.lit("")
    ).write_parquet(path)

    again, rejects, _ = read_all(only_feed(path, "parquet", cat), cat, batch_rows=500)

    assert rejects.height == 0
    assert again.schema == pl.Schema(TICK_SCHEMA)
    # the row number in this file, not the stored one: the file was written in reverse
    assert again["source_seq"].to_list() == list(range(ticks.height))
    # the source is this file's: its name and content digest
    assert (again["source"] == source_name(path)).all()
    assert again.drop("source_seq", "source").equals(stored.drop("source_seq", "source"))


def test_parquet_when_values_do_not_fit_the_schema_then_malformed_rows(
    cat: Catalogue, tmp_path: Path
) -> None:
    path = tmp_path / "ticks.parquet"
    t0 = 1_767_607_200_000_000_000
    good = {"symbol": "EUR/USD", "kind": "quote", "ts_ns": t0, "bid": 112_120, "ask": 112_172}
    pl.DataFrame(
        [good, {**good, "kind": "auction"}, {**good, "ts_ns": None}, {**good, "bid": None}]
    ).write_parquet(path)

    ticks, rejects, _ = read_all(only_feed(path, "parquet", cat), cat)

    assert ticks["source_seq"].to_list() == [0, 3]
    assert ticks["recv_ns"].to_list() == [t0, t0]  # no recv_ns stored: the event time
    assert ticks["bid"].to_list() == [112_120, None]
    assert rejects["source_seq"].to_list() == [1, 2]
    assert "bad kind auction" in rejects["detail"][0] or "bad kind" in rejects["detail"][0]
    assert "missing or bad ts_ns" in rejects["detail"][1]


@pytest.mark.parametrize("column", [0, 1, 3])
def test_histdata_when_a_field_is_megabytes_long_then_the_detail_quotes_a_capped_part(
    cat: Catalogue, tmp_path: Path, column: int
) -> None:
    fields = ["20200101 170000065", "1.12120", "1.12172", "0"]
    fields[column] = "x" * 5_000_000
    path = write(tmp_path / "eurusd.csv", "20200101 170000065,1.12120,1.12172,0\n" * 20
                 + ",".join(fields) + "\n")  # fmt: skip
    _, rejects, _ = read_all(only_feed(path, "histdata", cat), cat)
    assert rejects["source_seq"].to_list() == [20]
    assert len(rejects["detail"][0]) < 400
    assert "x" * 40 + "..." in rejects["detail"][0]
