"""Binance book-ticker and trade Parquet files, and tick Parquet files (``parquet``), read in
row slices (``pipelines.ticks.formats``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from pipelines.ticks.normalize import (
    _NS_PER_MS,
    Check,
    FeedError,
    FileFeed,
    RawBatch,
    _by_symbol,
    _checked_value,
    _float_given,
    _merge,
    _number_check,
    _shown,
    _size_int,
    _split,
)
from pipelines.ticks.schema import MAX_TS_NS, MIN_TS_NS, TICK_SCHEMA, TS_WINDOW
from trading.catalogue import Catalogue
from trading.instrument import Instrument

_REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "binance-quotes": ("timestamp", "bid", "ask"),
    "binance-trades": ("timestamp", "price", "quantity"),
    "parquet": ("symbol", "kind", "ts_ns"),
}


def _parquet_schema(path: Path) -> pl.Schema:
    try:
        return pl.scan_parquet(path).collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FeedError(f"{path}: cannot open as Parquet: {exc}") from None


def _collect(path: Path, query: pl.LazyFrame) -> pl.DataFrame:
    try:
        return query.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FeedError(f"{path}: cannot read Parquet: {exc}") from None


def _check_columns(path: Path, fmt: str, schema: pl.Schema) -> None:
    missing = [c for c in _REQUIRED_COLUMNS[fmt] if c not in schema]
    if missing:
        raise FeedError(f"{path}: {fmt} file lacks column(s) {missing}; has {schema.names()}")
    if fmt != "parquet":
        dtype = schema["timestamp"]
        if not (dtype.is_integer() or isinstance(dtype, pl.Datetime)):
            raise FeedError(
                f"{path}: timestamp column is {dtype}, expected integer milliseconds or datetime"
            )


def _epoch_ns(column: str, dtype: pl.DataType) -> pl.Expr:
    """A Binance timestamp as UTC nanoseconds: a datetime, or integer milliseconds; null
    outside ``schema.TS_WINDOW`` (bounded in milliseconds, before any product)."""
    if isinstance(dtype, pl.Datetime):
        ms, ns = pl.col(column).dt.epoch("ms"), pl.col(column).dt.epoch("ns")
    else:
        ms = pl.col(column).cast(pl.Int64, strict=False)
        ns = ms * _NS_PER_MS
    return pl.when(ms.is_between(MIN_TS_NS // _NS_PER_MS, MAX_TS_NS // _NS_PER_MS - 1)).then(ns)


def _parquet_batches(
    feed: FileFeed, catalogue: Catalogue, inst: Instrument | None, start_seq: int, batch_rows: int
) -> Iterator[RawBatch]:
    path = feed.path
    schema = _parquet_schema(path)
    _check_columns(path, feed.fmt, schema)
    total = _collect(path, pl.scan_parquet(path).select(pl.len())).item()
    columns = list(schema.names())
    row = "__bourse_row"  # a lake file has its own source_seq: this file's row is another
    scan = pl.scan_parquet(path, row_index_name=row).select(pl.col(row).alias("__seq"), *columns)
    for lo in range(start_seq, total, batch_rows):
        raw = _collect(path, scan.slice(lo, batch_rows))
        next_seq = min(lo + batch_rows, total)
        raw = raw.rename({c: f"v_{c}" for c in columns}).with_columns(  # apart from the tick's
            source_seq=pl.col("__seq").cast(pl.Int64)
        )
        parts = (
            _by_symbol(raw, "v_symbol", feed, catalogue) if "symbol" in schema else [(raw, inst)]
        )
        record = pl.struct(pl.col(f"v_{c}").alias(c) for c in columns).struct.json_encode()
        split = []
        for part, part_inst in parts:
            if feed.fmt == "binance-quotes":
                parsed = _parse_binance_quotes(part, schema, part_inst)
            elif feed.fmt == "binance-trades":
                parsed = _parse_binance_trades(part, schema, part_inst)
            else:
                parsed = _parse_tick_parquet(part, schema, part_inst)
            split.append(_split(*parsed, feed, part_inst, next_seq, line=record))
        batch = _merge(split)
        if batch is not None:
            yield batch


def _parse_binance_quotes(
    raw: pl.DataFrame, schema: pl.Schema, inst: Instrument | None
) -> tuple[pl.DataFrame, list[Check]]:
    def size(name: str) -> pl.Expr:
        if name not in schema:
            return pl.lit(None, dtype=pl.Int64)
        return _size_int(pl.col(f"v_{name}").cast(pl.Float64, strict=False))

    frame = raw.with_columns(
        ts_ns=_epoch_ns("v_timestamp", schema["timestamp"]),
        bid=_checked_value(pl.col("v_bid").cast(pl.Float64, strict=False), inst),
        ask=_checked_value(pl.col("v_ask").cast(pl.Float64, strict=False), inst),
        bid_size=size("bid_size"),
        ask_size=size("ask_size"),
        v_bid_given=_float_given("v_bid"),
        v_ask_given=_float_given("v_ask"),
    )
    checks = [
        (pl.col("ts_ns").is_null(), pl.lit(f"missing or bad timestamp (a time from {TS_WINDOW})")),
        _number_check("v_bid", "bid", "bid"),
        _number_check("v_ask", "ask", "ask"),
    ]
    return frame, checks


def _parse_binance_trades(
    raw: pl.DataFrame, schema: pl.Schema, inst: Instrument | None
) -> tuple[pl.DataFrame, list[Check]]:
    maker_ok: pl.Expr = pl.lit(True)
    if "buyer_maker" in schema and schema["buyer_maker"] != pl.Boolean:
        text = pl.col("v_buyer_maker").cast(pl.String, strict=False)
        maker_ok = text.is_null() | text.str.strip_chars().str.to_lowercase().is_in(
            ["true", "false"]
        )
    frame = raw.with_columns(
        ts_ns=_epoch_ns("v_timestamp", schema["timestamp"]),
        price=_checked_value(pl.col("v_price").cast(pl.Float64, strict=False), inst),
        qty=_size_int(pl.col("v_quantity").cast(pl.Float64, strict=False)),
        trade_id=pl.col("v_trade_id").cast(pl.String, strict=False)
        if "trade_id" in schema
        else pl.lit(None, dtype=pl.String),
        v_price_given=_float_given("v_price"),
        maker_ok=maker_ok,
    )
    checks = [
        (pl.col("ts_ns").is_null(), pl.lit(f"missing or bad timestamp (a time from {TS_WINDOW})")),
        _number_check("v_price", "price", "price"),
        (
            ~pl.col("maker_ok"),
            pl.format("bad buyer_maker {}", _shown(pl.col("v_buyer_maker").cast(pl.String))),
        ),
    ]
    return frame, checks


_TICK_VALUE_COLUMNS: Final = (
    "kind",
    "ts_ns",
    "recv_ns",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "price",
    "qty",
    "trade_id",
)


def _parse_tick_parquet(
    raw: pl.DataFrame, schema: pl.Schema, inst: Instrument | None
) -> tuple[pl.DataFrame, list[Check]]:
    """A file in TICK_SCHEMA: its columns cast (a value that does not cast is a problem),
    prices checked on the tick grid; a missing recv_ns is the event time."""
    values: dict[str, pl.Expr] = {}
    checks: list[Check] = [
        (pl.col("kind").is_null(), pl.lit("missing or bad kind")),
        (pl.col("ts_ns").is_null(), pl.lit("missing or bad ts_ns")),
        (
            ~pl.col("ts_ns").is_between(MIN_TS_NS, MAX_TS_NS - 1),
            pl.format("ts_ns {} is not a time from {}", pl.col("ts_ns"), pl.lit(TS_WINDOW)),
        ),
    ]
    for name in _TICK_VALUE_COLUMNS:
        dtype = TICK_SCHEMA[name]
        if name not in schema:
            values[name] = pl.lit(None, dtype=dtype)
            continue
        vendor = pl.col(f"v_{name}")
        values[name] = vendor.cast(dtype, strict=False)
        checks.append(
            (
                vendor.is_not_null() & pl.col(name).is_null(),
                pl.format("bad {} {}", pl.lit(name), _shown(vendor.cast(pl.String))),
            )
        )
    if inst is not None and inst.tick_int > 1:
        checks.extend(
            (
                (pl.col(name) % inst.tick_int != 0).fill_null(False),
                pl.format("{} {} is off the tick grid", pl.lit(name), pl.col(name)),
            )
            for name in ("bid", "ask", "price")
        )
    frame = raw.with_columns(**values).with_columns(
        recv_ns=pl.coalesce(pl.col("recv_ns"), pl.col("ts_ns"))
    )
    return frame, checks
