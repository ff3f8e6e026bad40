"""Vendor files -> normalized tick batches (``schema.TICK_SCHEMA``), each format's quirks once.

Formats (``FORMATS``):

- ``histdata``: HistData tick CSV, no header, ``YYYYMMDD HHMMSSfff,bid,ask,volume``. Times
  are EST *without* daylight saving, i.e. a fixed UTC-5 all year (HistData's convention), so
  ``20200101 170000065`` is 2020-01-01T22:00:00.065Z. Quotes; the volume is always 0, so
  sizes are null. The symbol comes from the file name or the caller.
- ``truefx``: TrueFX CSV, either with the header ``timestamp,bid,ask`` and ISO-8601 times
  (``2013-01-01 22:00:00.295000+00:00``; without an offset, UTC), or TrueFX's own headerless
  layout ``EUR/USD,20130101 22:00:00.295,bid,ask`` (UTC) whose first column is the symbol.
  Quotes, sizes null.
- ``binance-quotes``: Parquet book ticker: ``timestamp`` (ms since the epoch, UTC, as an
  integer or a datetime column), ``symbol`` (optional, else from the file name), ``bid``,
  ``ask``, ``bid_size``, ``ask_size`` (float64).
- ``binance-trades``: Parquet trades: ``timestamp``, ``trade_id``, ``price``, ``quantity``,
  ``buyer_maker`` (``"True"``/``"False"`` strings: validated, not kept). Kind ``trade``.
- ``parquet``: a file already in ``TICK_SCHEMA`` (written by the lake or a test); extra
  columns (``day``, ``reason``, ``detail``) are ignored.

A file is read as the format it is given as only when its first rows are of that format
(``sniff``): otherwise ``FeedError`` names the format expected and shows what was seen,
before anything is read. A directory gives the files of the format, judged by content
(``select_files`` says which others it skipped and why).

Normalization, the same for every format:

- ``symbol`` is the catalogue's canonical symbol (vendor spellings resolved with
  ``Catalogue.resolve``). A file with a symbol column gives one ``FileFeed`` per symbol in it
  (rows whose symbol the catalogue does not know are rejected as ``unknown_symbol`` by the
  first feed of the file, ``FileFeed.unknown_symbols``; a file with no known symbol at all
  raises FeedError); otherwise the symbol is the caller's or is guessed from the file name.
- ``ts_ns`` is UTC nanoseconds. ``recv_ns == ts_ns`` for every vendor file replay: a vendor
  file carries no receive time, and the event time is the only honest stand-in (staleness
  and future-time filters therefore see zero latency on replays). A tick Parquet file
  (``parquet``) keeps the ``recv_ns`` it stores (the event time where that is null), so a
  replayed live capture is screened as it was received.
- Float prices are quantized to the nearest tick (price units), and float sizes (in units of
  the underlying, as vendors give them) to the nearest ``SIZE_SCALE``-th of a unit, in
  Polars arithmetic (halves away from zero); nothing stays a float.
- ``source`` is the file's name and a short digest of its content (``source_name``), and
  ``source_seq`` the 0-based row number of the record in the file (data rows only, header
  excluded; for a file with several symbols, the row number in the file, so one feed's seqs
  have gaps). For ``parquet`` input both are this file's,
  not the stored ones.
- Every record lands in exactly one of ``RawBatch.ticks`` / ``RawBatch.rejects``. A CSV row
  that cannot be parsed (wrong field count, non-numeric price, bad timestamp, a row cut short
  at the end of a truncated file, an empty line) is rejected as ``malformed`` with a detail
  naming the file, the row and the raw text; an empty price field is *not* malformed: the row
  is a tick with a null price (the filters reject it as ``missing_price``), as are null or NaN
  Parquet prices. A file that cannot be opened at all raises ``FeedError``.

Batches: ``read_batches`` cuts the file into runs of ``batch_rows`` file rows starting at
``start_seq``, so boundaries are ``start_seq + k * batch_rows``: resuming from a boundary
yields exactly the batches an uninterrupted read yields after it. A feed of a multi-symbol
file gets only its own rows of each run (a run without any is skipped). CSV files are read
in blocks of whole lines and never re-read; skipping to ``start_seq`` only counts newlines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

import polars as pl

from pipelines.ticks import sniff
from pipelines.ticks.schema import (
    KIND_DTYPE,
    MAX_TS_NS,
    MIN_TS_NS,
    REASON_DTYPE,
    REJECTED_SCHEMA,
    SIZE_SCALE,
    TICK_SCHEMA,
    TS_WINDOW,
    Kind,
    Reason,
    conform,
)
from trading.catalogue import Catalogue
from trading.errors import UnknownSymbol
from trading.instrument import Instrument

__all__ = [
    "FORMATS",
    "REJECT_SCHEMA",
    "FeedError",
    "FileFeed",
    "RawBatch",
    "discover",
    "read_batches",
]

FORMATS: tuple[str, ...] = ("histdata", "truefx", "binance-quotes", "binance-trades", "parquet")

# A batch's rejects: the lake's rejected-tick columns but its partition day.
REJECT_SCHEMA: dict[str, pl.DataType] = {c: t for c, t in REJECTED_SCHEMA.items() if c != "day"}

_BLOCK_BYTES: Final = 1 << 24  # CSV read size; a block is cut at its last newline
_DIGEST_SPAN: Final = 1 << 20  # bytes of a file's head and tail in its source name
_DETAIL_TEXT_MAX: Final = 200  # raw text quoted in a reject's detail, in characters
_FIELD_TEXT_MAX: Final = 40  # a field quoted in a detail, in characters
_EST_OFFSET_NS: Final = 5 * 3600 * 1_000_000_000  # HistData: EST without DST = UTC-5
_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000
_NS_PER_DAY: Final = 86_400 * _NS_PER_S
_TOKEN_RE: Final = re.compile(r"[-_.\s]+")
_MIN_DATE: Final = dt.date(1990, 1, 1)  # schema.TS_WINDOW, as dates
_LAST_DATE: Final = dt.date(2099, 12, 31)


class FeedError(ValueError):
    """A vendor file cannot be read as the format it was given as (names the file)."""


@dataclass(frozen=True, slots=True)
class FileFeed:
    """One symbol's records in one vendor file: the unit of partitioning and of resume."""

    path: Path
    fmt: str
    symbol: str  # canonical catalogue symbol, e.g. "EUR/USD"
    source: str  # the file's name and content digest (``source_name``)
    # Also yields, as unknown_symbol rejects, the file's rows whose in-file symbol the
    # catalogue lacks (one feed of such a file does, so that none is lost or duplicated).
    unknown_symbols: bool = False

    @property
    def key(self) -> str:
        return f"{self.source}|{self.symbol}"


@dataclass(frozen=True, slots=True)
class RawBatch:
    ticks: pl.DataFrame  # TICK_SCHEMA, source_seq ascending
    rejects: pl.DataFrame  # REJECT_SCHEMA: malformed rows and unknown symbols
    next_seq: int  # the source_seq to resume from after this batch


# --- discovery ------------------------------------------------------------------------------


def discover(
    path: Path, fmt: str, catalogue: Catalogue, symbol: str | None = None
) -> list[FileFeed]:
    """The feeds of a file, or of every file of the format in a directory (by content:
    ``select_files``).

    ``symbol`` (any alias) names the symbol of files without a symbol column, and selects
    one symbol of files with one; without it the symbol is guessed from the file name or
    read from the file. Raises FeedError naming the file for an unknown format, a missing
    file, a file that cannot be opened, or a symbol that cannot be resolved.
    """
    files, _ = select_files(Path(path), fmt)
    return [feed for file in files for feed in _discover_file(file, fmt, catalogue, symbol)]


def select_files(path: Path, fmt: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files to replay as ``fmt``: ``path`` itself, or the files of a directory whose
    first rows fit the format (whatever their extension), with the skipped ones and why.

    Raises FeedError for an unknown format, a missing path, a file that is not of the
    format (naming the format expected and what was seen), or a directory without one.
    """
    if fmt not in FORMATS:
        raise FeedError(f"{path}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if path.is_file():
        try:
            seen = sniff.mismatch(path, fmt)
        except OSError as exc:
            raise FeedError(f"{path}: cannot open: {exc}") from None
        if seen is not None:
            raise FeedError(sniff.describe(path, fmt, seen))
        return [path], []
    if not path.is_dir():
        raise FeedError(f"{path}: no such file or directory")
    files, skipped = [], []
    for p in sorted(path.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        try:
            seen = sniff.mismatch(p, fmt)
        except OSError as exc:
            seen = f"unreadable ({exc})"
        if seen is None:
            files.append(p)
        else:
            other = sniff.guess(p)
            skipped.append((p, f"a {other} file" if other else f"not {fmt}: {seen}"))
    if not files:
        why = "; ".join(f"{p.name}: {reason}" for p, reason in skipped[:5]) or "it is empty"
        raise FeedError(f"{path}: no {fmt} file in the directory ({why})")
    return files, skipped


def source_name(path: Path) -> str:
    """A file's ``source``: its name and a short digest of its content, ``name@digest``.

    Two different files of the same name (a day's file of two vendors, a file and its
    corrected re-issue) are two sources: replayed into one home, each keeps its own lake
    files. The digest covers the size and the first and last MiB, so naming a 10 GB file
    costs no more than a small one; files that differ only in between (a vendor does not
    re-issue a file that way) would share it.
    """
    digest = hashlib.blake2b(digest_size=4)
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            digest.update(str(size).encode())
            fh.seek(0)
            digest.update(fh.read(_DIGEST_SPAN))
            if size > _DIGEST_SPAN:
                fh.seek(max(_DIGEST_SPAN, size - _DIGEST_SPAN))
                digest.update(fh.read(_DIGEST_SPAN))
    except OSError as exc:
        raise FeedError(f"{path}: cannot open: {exc}") from None
    return f"{path.name}@{digest.hexdigest()}"


def _discover_file(
    path: Path, fmt: str, catalogue: Catalogue, symbol: str | None
) -> list[FileFeed]:
    in_file = _symbols_in_file(path, fmt)
    if in_file is None:  # no symbol column: the caller's symbol or the file name's
        inst = _resolve_arg(path, catalogue, symbol) if symbol else _guess(path, catalogue)
        return [FileFeed(path, fmt, inst.symbol, source_name(path))]
    names = _canonical(in_file, catalogue)
    feeds = sorted({s for s in names.values() if s is not None})
    unknown = sorted((str(raw) for raw, s in names.items() if s is None), key=str)
    if symbol is not None:
        wanted = _resolve_arg(path, catalogue, symbol).symbol
        if wanted not in feeds:
            raise FeedError(f"{path}: no rows for symbol {wanted}; the file has {feeds}")
        feeds = [wanted]
    if not feeds:
        raise FeedError(f"{path}: no symbol of the file is in the catalogue: {unknown[:10]}")
    return [
        FileFeed(path, fmt, s, source_name(path), unknown_symbols=bool(unknown) and i == 0)
        for i, s in enumerate(feeds)
    ]


def _resolve_arg(path: Path, catalogue: Catalogue, symbol: str) -> Instrument:
    try:
        return catalogue.resolve(symbol)
    except UnknownSymbol:
        raise FeedError(f"{path}: unknown symbol {symbol!r}") from None


def _guess(path: Path, catalogue: Catalogue) -> Instrument:
    """The one instrument named in the file name: a token (``eurusd``, ``BTCUSDT``) or two
    adjacent tokens as a pair (``eur-usd``)."""
    tokens = [t for t in _TOKEN_RE.split(path.name) if t]
    candidates = [*tokens, *(f"{a}/{b}" for a, b in itertools.pairwise(tokens))]
    found: dict[str, Instrument] = {}
    for name in candidates:
        try:
            inst = catalogue.resolve(name)
        except UnknownSymbol:
            continue
        found[inst.symbol] = inst
    if len(found) != 1:
        what = "no catalogue symbol" if not found else f"several symbols {sorted(found)}"
        raise FeedError(f"{path}: {what} in the file name; give it with --symbol")
    return next(iter(found.values()))


def _canonical(raw: Iterable[str | None], catalogue: Catalogue) -> dict[str | None, str | None]:
    """Each raw in-file symbol -> its canonical symbol, or None if the catalogue lacks it."""
    out: dict[str | None, str | None] = {}
    for name in raw:
        try:
            out[name] = catalogue.resolve(name).symbol if name is not None else None
        except UnknownSymbol:
            out[name] = None
    return out


def _symbols_in_file(path: Path, fmt: str) -> list[str | None] | None:
    """The distinct raw symbols of a file with a symbol column; None if it has none."""
    if fmt == "histdata":
        return None
    if fmt == "truefx":
        header, _ = _truefx_layout(path)
        if header:
            return None
        raw: set[str | None] = set()
        for _, lines in _csv_lines(path, skip_header=False, start_seq=0, batch_rows=1 << 20):
            raw.update(_first_field(lines).unique().to_list())
        return sorted(raw, key=lambda s: (s is None, s or ""))
    schema = _parquet_schema(path)
    _check_columns(path, fmt, schema)
    if "symbol" not in schema:
        return None
    symbols = _collect(path, pl.scan_parquet(path).select(pl.col("symbol").unique()))
    return sorted(symbols["symbol"].to_list(), key=lambda s: (s is None, s or ""))


# --- reading --------------------------------------------------------------------------------


def read_batches(
    feed: FileFeed, catalogue: Catalogue, *, start_seq: int = 0, batch_rows: int = 100_000
) -> Iterator[RawBatch]:
    """The feed's records from ``source_seq == start_seq`` on, in runs of ``batch_rows``
    file rows (see the module docstring); every record in exactly one of ticks/rejects."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    if start_seq < 0:
        raise ValueError(f"start_seq must be >= 0, got {start_seq}")
    inst = _feed_instrument(feed, catalogue)
    if feed.fmt == "histdata":
        for seq0, lines in _csv_lines(feed.path, False, start_seq, batch_rows):
            yield _split(*_parse_histdata(lines, seq0, inst), feed, inst, seq0 + len(lines))
    elif feed.fmt == "truefx":
        header, _ = _truefx_layout(feed.path)
        for seq0, lines in _csv_lines(feed.path, header, start_seq, batch_rows):
            frame = _lines_frame(lines, seq0, 3 if header else 4)
            parts = [(frame, inst)] if header else _by_symbol(frame, "f0", feed, catalogue)
            parsed = [(*_parse_truefx(part, i, header=header), i) for part, i in parts]
            batch = _merge([_split(f, c, feed, i, seq0 + len(lines)) for f, c, i in parsed])
            if batch is not None:
                yield batch
    elif feed.fmt in ("binance-quotes", "binance-trades", "parquet"):
        yield from _parquet_batches(feed, catalogue, inst, start_seq, batch_rows)
    else:
        raise FeedError(f"{feed.path}: unknown format {feed.fmt!r}; known: {', '.join(FORMATS)}")


def _feed_instrument(feed: FileFeed, catalogue: Catalogue) -> Instrument:
    if feed.fmt not in FORMATS:
        raise FeedError(f"{feed.path}: unknown format {feed.fmt!r}; known: {', '.join(FORMATS)}")
    try:
        return catalogue.get(feed.symbol)
    except UnknownSymbol:
        raise FeedError(
            f"{feed.path}: feed symbol {feed.symbol!r} is not in the catalogue"
        ) from None


# --- CSV lines ------------------------------------------------------------------------------


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


# --- parsing (vectorized) ------------------------------------------------------------------

# A check: (condition true on a faulty row, the problem as text). Conditions are evaluated on
# every row; the texts only on the rows that fail, so clean files pay for booleans only.
Check = tuple[pl.Expr, pl.Expr]


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


def _scaled_round(expr: pl.Expr, factor: float, step: int) -> pl.Expr:
    """``round(expr × factor) × step`` as Int64 (halves away from zero): null for null, NaN,
    infinite or too large.

    The product is first rounded to 15 significant digits, which a float64 holds exactly:
    that removes the float error of the multiplication, so that a vendor value on a half
    step rounds as its decimal text does (0.004925 BTC × 10**5 is 492.49999999999994 in
    floats, 492.5 in decimal: 493 steps, not 492)."""
    scaled = (expr.fill_nan(None) * factor).round_sig_figs(15).round(mode="half_away_from_zero")
    return scaled.cast(pl.Int64, strict=False) * step


def _price_int(expr: pl.Expr, inst: Instrument | None) -> pl.Expr:
    """Float prices to the nearest tick, in price units (null for an unknown symbol)."""
    if inst is None:
        return pl.lit(None, dtype=pl.Int64)
    return _scaled_round(expr, inst.price_scale // inst.tick_int, inst.tick_int)


def _size_int(expr: pl.Expr) -> pl.Expr:
    """Float sizes in units of the underlying as SIZE_SCALE-ths (``schema.SIZE_SCALE``)."""
    return _scaled_round(expr, SIZE_SCALE, 1)


def _number_check(raw: str, value: str, name: str) -> Check:
    """Raw text (or float) ``raw`` present but ``value`` null: not a finite number in range.
    An empty field or a null/NaN float is not a problem: the tick keeps a null price (the
    filters reject it as missing_price)."""
    return (
        pl.col(value).is_null() & pl.col(f"{raw}_given"),
        pl.format("bad {} {}", pl.lit(name), _shown(pl.col(raw).cast(pl.String))),
    )


def _text_given(field: str) -> pl.Expr:
    return (pl.col(field).is_not_null() & (pl.col(field) != "")).alias(f"{field}_given")


def _float_given(column: str) -> pl.Expr:
    col = pl.col(column).cast(pl.Float64, strict=False)
    return (col.is_not_null() & ~col.is_nan()).alias(f"{column}_given")


def _checked_value(raw: pl.Expr, inst: Instrument | None) -> pl.Expr:
    """The price units of ``raw`` (float); for an unknown symbol a stand-in that is null
    exactly when the number is not usable, so that the check still applies."""
    return _price_int(raw, inst) if inst is not None else _scaled_round(raw, 1.0, 1)


def _shown(text: pl.Expr) -> pl.Expr:
    """A raw field as quoted in a reject's detail: its first ``_FIELD_TEXT_MAX`` characters
    (a 50 MB field must not be copied whole into every detail)."""
    return (
        pl.when(text.str.len_chars() > _FIELD_TEXT_MAX)
        .then(pl.format("{}...", text.str.slice(0, _FIELD_TEXT_MAX)))
        .otherwise(text)
    )


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


def _by_symbol(
    frame: pl.DataFrame, column: str, feed: FileFeed, catalogue: Catalogue
) -> list[tuple[pl.DataFrame, Instrument | None]]:
    """The rows of ``frame`` that belong to ``feed`` by their raw symbol (``column``), with
    the feed's instrument, and, for the feed that carries them, the rows of symbols the
    catalogue lacks (instrument None)."""
    mapping = _canonical(frame.get_column(column).unique().to_list(), catalogue)

    def rows_of(keys: list[str | None]) -> pl.DataFrame:
        keep = pl.col(column).is_in([k for k in keys if k is not None])
        if None in keys:
            keep = keep | pl.col(column).is_null()
        return frame.filter(keep)

    own = rows_of([k for k, v in mapping.items() if v == feed.symbol])
    parts: list[tuple[pl.DataFrame, Instrument | None]] = [(own, catalogue.get(feed.symbol))]
    if feed.unknown_symbols:
        parts.append((rows_of([k for k, v in mapping.items() if v is None]), None))
    return [(part, inst) for part, inst in parts if part.height]


def _merge(batches: list[RawBatch]) -> RawBatch | None:
    """One batch of the parts of a run (same next_seq); None if no part has a row."""
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    return RawBatch(
        ticks=pl.concat([b.ticks for b in batches]).sort("source_seq"),
        rejects=pl.concat([b.rejects for b in batches]).sort("source_seq"),
        next_seq=batches[0].next_seq,
    )


# --- Parquet --------------------------------------------------------------------------------

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


def _raw_symbol(frame: pl.DataFrame) -> pl.Expr:
    """The vendor's symbol text of rows the catalogue does not know."""
    for column in ("v_symbol", "f0"):
        if column in frame.columns:
            return pl.col(column).cast(pl.String)
    return pl.lit(None, dtype=pl.String)


# --- one frame -> ticks and rejects ---------------------------------------------------------


def _split(
    frame: pl.DataFrame,
    checks: list[Check],
    feed: FileFeed,
    inst: Instrument | None,
    next_seq: int,
    line: pl.Expr | None = None,
) -> RawBatch:
    """Parsed rows -> ticks, and rejects: rows failing a check (``malformed``, the first
    failing check as the detail) and, for an unknown symbol, the others (``unknown_symbol``).
    """
    kind = Kind.TRADE if feed.fmt == "binance-trades" else Kind.QUOTE
    conds = [cond.fill_null(True) for cond, _ in checks]
    frame = frame.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in TICK_SCHEMA.items() if c not in frame.columns
    ).with_columns(
        symbol=pl.lit(feed.symbol) if inst is not None else _raw_symbol(frame),
        source=pl.lit(feed.source),
        malformed=pl.any_horizontal(conds) if conds else pl.lit(False),
    )
    if feed.fmt != "parquet":  # a vendor file: its kind, and no receive time (see above)
        frame = frame.with_columns(
            kind=pl.lit(kind.value, dtype=KIND_DTYPE), recv_ns=pl.col("ts_ns")
        )
    if inst is not None:
        clean = frame.filter(~pl.col("malformed"))
        rejected = frame.filter(pl.col("malformed"))
    else:
        clean, rejected = frame.clear(), frame
    problems = [pl.when(c).then(text) for c, (_, text) in zip(conds, checks, strict=True)]
    problem = pl.coalesce(
        *problems, pl.format("unknown symbol '{}'", _shown(pl.col("symbol").cast(pl.String)))
    )
    rejects = rejected.with_columns(
        reason=pl.when(pl.col("malformed"))
        .then(pl.lit(Reason.MALFORMED.value))
        .otherwise(pl.lit(Reason.UNKNOWN_SYMBOL.value))
        .cast(REASON_DTYPE),
        detail=pl.format(
            "{} row {}: {}: {}",
            pl.lit(feed.path.name),
            pl.col("source_seq"),
            problem,
            (pl.col("line") if line is None else line).str.slice(0, _DETAIL_TEXT_MAX),
        ),
    )
    return RawBatch(
        ticks=conform(clean),
        rejects=rejects.select(pl.col(c).cast(t) for c, t in REJECT_SCHEMA.items()),
        next_seq=next_seq,
    )
