"""HistData and TrueFX text files (``pipelines.ticks.formats``): lines read in blocks, parsed
into tick columns with one vectorized pass per run of lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final, Literal

import polars as pl

from pipelines.ticks.normalize import (
    _NS_PER_MS,
    Check,
    FeedError,
    _checked_value,
    _number_check,
    _shown,
    _text_given,
)
from pipelines.ticks.schema import MAX_TS_NS, MIN_TS_NS, TS_WINDOW
from trading.instrument import Instrument

_BLOCK_BYTES: Final = 1 << 24  # CSV read size; a block is cut at its last newline
_EST_OFFSET_NS: Final = 5 * 3600 * 1_000_000_000  # HistData: EST without DST = UTC-5
_NS_PER_S: Final = 1_000_000_000
_NS_PER_DAY: Final = 86_400 * _NS_PER_S
_MIN_DATE: Final = dt.date(1990, 1, 1)  # schema.TS_WINDOW, as dates
_LAST_DATE: Final = dt.date(2099, 12, 31)


def _csv_lines(
    path: Path, skip_header: bool, start_seq: int, batch_rows: int
) -> Iterator[tuple[int, pl.Series]]:
    """(source_seq of the first line, the lines) in runs of ``batch_rows`` lines from
    ``start_seq``. A line is what lies between newlines (a trailing ``\\r`` dropped); the
    text after the last newline, if any, is the last line (a row cut short stays a row)."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise FeedError(f"{path}: cannot open: {exc}") from None
    with file:
        if skip_header:
            file.readline()
        seq = 0  # source_seq of the first line of the next chunk
        pending: list[pl.Series] = []
        pending_rows = 0
        first = start_seq
        for chunk in _line_chunks(file):
            count = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            if seq + count <= start_seq:  # skipping to start_seq: count only
                seq += count
                continue
            lines = _split_lines(chunk)
            if seq < start_seq:
                lines = lines.slice(start_seq - seq)
            seq += count
            pending.append(lines)
            pending_rows += len(lines)
            while pending_rows >= batch_rows:
                run = pl.concat(pending) if len(pending) > 1 else pending[0]
                yield first, run.slice(0, batch_rows)
                first += batch_rows
                rest = run.slice(batch_rows)
                pending, pending_rows = [rest], len(rest)
        if pending_rows:
            yield first, pl.concat(pending) if len(pending) > 1 else pending[0]


def _line_chunks(file: BinaryIO) -> Iterator[bytes]:
    """The file in blocks of whole lines (each ends with a newline, but maybe the last)."""
    rest = b""
    at_start = True
    while True:
        block = file.read(_BLOCK_BYTES)
        if at_start:
            block = block.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
            at_start = False
        if not block:
            if rest:
                yield rest
            return
        data = rest + block if rest else block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            continue
        yield data[:cut]
        rest = data[cut:]


def _split_lines(chunk: bytes) -> pl.Series:
    text = chunk.decode("utf-8", errors="replace")  # bad bytes fail parsing: malformed
    text = text.removesuffix("\n")
    return pl.Series("line", [text]).str.split("\n").explode().str.strip_chars_end("\r")


def _first_field(lines: pl.Series) -> pl.Series:
    return lines.str.split_exact(",", 1).struct.field("field_0").str.strip_chars()


def _truefx_layout(path: Path) -> tuple[bool, str]:
    """(has a header, first line) of a TrueFX file."""
    try:
        with path.open("rb") as file:
            line = file.readline(4096)
    except OSError as exc:
        raise FeedError(f"{path}: cannot open: {exc}") from None
    text = line.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()
    return text.lower().startswith("timestamp"), text


def _lines_frame(lines: pl.Series, seq0: int, n_fields: int) -> pl.DataFrame:
    """Lines with their source_seq and field count, split into string fields f0..f{n-1}
    (null past the end of a short line; stripped of spaces if any line has them)."""
    names = [f"f{i}" for i in range(n_fields)]
    fields = pl.col("line").str.split(",")
    frame = pl.DataFrame({"line": lines}).with_columns(
        source_seq=pl.int_range(seq0, seq0 + len(lines), dtype=pl.Int64),
        n_fields=fields.list.len(),
        parts=fields.list.to_struct(fields=names),
    )
    frame = frame.unnest("parts")
    if lines.str.contains(r"\s,|,\s|^\s|\s$").any():  # rare: pay for stripping only then
        frame = frame.with_columns(pl.col(names).str.strip_chars())
    return frame


def _field_count(n: int) -> Check:
    return (
        pl.col("n_fields") != n,
        pl.format("expected {} fields, got {}", pl.lit(n), pl.col("n_fields")),
    )


def _parse_histdata(
    lines: pl.Series, seq0: int, inst: Instrument | None
) -> tuple[pl.DataFrame, list[Check]]:
    frame = _lines_frame(lines, seq0, 4)
    ts = pl.col("f0")

    def digits(start: int, length: int) -> pl.Expr:
        return ts.str.slice(start, length).cast(pl.Int64, strict=False)

    date = ts.str.slice(0, 8).str.to_date("%Y%m%d", strict=False)
    hh, mm, ss, ms = digits(9, 2), digits(11, 2), digits(13, 2), digits(15, 3)
    # The date is bounded before it is multiplied out: year 9999 overflows int64 ns.
    in_window = date.is_between(_MIN_DATE, _LAST_DATE)
    ts_ok = ts.str.contains(r"^\d{8} \d{9}$") & in_window & (hh < 24) & (mm < 60)
    est_ns = date.cast(pl.Int64) * _NS_PER_DAY + ((hh * 60 + mm) * 60 + ss) * _NS_PER_S
    frame = frame.with_columns(
        ts_ns=pl.when(ts_ok & (ss < 60)).then(est_ns + ms * _NS_PER_MS + _EST_OFFSET_NS),
        bid=_checked_value(pl.col("f1").cast(pl.Float64, strict=False), inst),
        ask=_checked_value(pl.col("f2").cast(pl.Float64, strict=False), inst),
        volume_ok=(pl.col("f3") == "") | pl.col("f3").cast(pl.Float64, strict=False).is_not_null(),
        f1_given=_text_given("f1"),
        f2_given=_text_given("f2"),
    )
    checks = [
        _field_count(4),
        (pl.col("ts_ns").is_null(), _bad_timestamp(ts)),
        _number_check("f1", "bid", "bid"),
        _number_check("f2", "ask", "ask"),
        (~pl.col("volume_ok"), pl.format("bad volume {}", _shown(pl.col("f3")))),
    ]
    return frame, checks


def _parse_truefx(
    frame: pl.DataFrame, inst: Instrument | None, *, header: bool
) -> tuple[pl.DataFrame, list[Check]]:
    """Either layout, from its lines frame; the headerless one's symbol text is ``f0``."""
    n = 3 if header else 4
    first = 0 if header else 1  # index of the timestamp field
    ts = pl.col(f"f{first}")
    # With a header: ISO-8601 with an offset, as the sample has it; without: TrueFX's own
    # 20130101 22:00:00.295, UTC.
    ts_ns = _iso_ns(ts, "%Y-%m-%d %H:%M:%S%.f%:z" if header else "%Y%m%d %H:%M:%S%.f")
    bid, ask = f"f{first + 1}", f"f{first + 2}"
    frame = frame.with_columns(
        ts_ns=ts_ns,
        bid=_checked_value(pl.col(bid).cast(pl.Float64, strict=False), inst),
        ask=_checked_value(pl.col(ask).cast(pl.Float64, strict=False), inst),
        **{f"{bid}_given": _text_given(bid), f"{ask}_given": _text_given(ask)},
    )
    if header and frame.get_column("ts_ns").null_count():  # other ISO spellings, if any
        frame = frame.with_columns(
            ts_ns=pl.coalesce(
                pl.col("ts_ns"),
                _iso_ns(ts, "%Y-%m-%d %H:%M:%S%.f%#z"),  # +0000, Z
                _iso_ns(ts, "%Y-%m-%dT%H:%M:%S%.f%#z"),
                _iso_ns(ts, "%Y-%m-%d %H:%M:%S%.f"),  # no offset: UTC
                _iso_ns(ts, "%Y-%m-%dT%H:%M:%S%.f"),
            )
        )
    checks = [
        _field_count(n),
        (pl.col("ts_ns").is_null(), _bad_timestamp(ts)),
        _number_check(bid, "bid", "bid"),
        _number_check(ask, "ask", "ask"),
    ]
    return frame, checks


def _iso_ns(ts: pl.Expr, layout: str) -> pl.Expr:
    """ISO text as UTC nanoseconds (with an offset: converted; without: taken as UTC); null
    outside ``schema.TS_WINDOW``. Parsed at microseconds first, whose range spans every
    year, and bounded there: parsed straight to nanoseconds, years 1 and 9999 wrap."""

    def moment(unit: Literal["ns", "us"]) -> pl.Expr:
        at = ts.str.to_datetime(layout, strict=False, time_unit=unit)
        if layout.endswith(("%:z", "%#z")):
            at = at.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return at

    us = moment("us").dt.epoch("us")
    return pl.when(us.is_between(MIN_TS_NS // 1_000, MAX_TS_NS // 1_000 - 1)).then(
        moment("ns").dt.epoch("ns")
    )


def _bad_timestamp(ts: pl.Expr) -> pl.Expr:
    return pl.format("bad timestamp {} (a time from {} expected)", _shown(ts), pl.lit(TS_WINDOW))
