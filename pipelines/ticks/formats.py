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

This module finds the feeds and dispatches the reading; the text formats are parsed in
``formats_csv``, the Parquet ones in ``formats_parquet``, and what they share (the feed and
batch types, quantization, the split into ticks and rejects) is in ``normalize``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from pipelines.ticks import sniff
from pipelines.ticks.formats_csv import (
    _csv_lines,
    _first_field,
    _lines_frame,
    _parse_histdata,
    _parse_truefx,
    _truefx_layout,
)
from pipelines.ticks.formats_parquet import (
    _check_columns,
    _collect,
    _parquet_batches,
    _parquet_schema,
)
from pipelines.ticks.normalize import (
    REJECT_SCHEMA,
    FeedError,
    FileFeed,
    RawBatch,
    _by_symbol,
    _canonical,
    _merge,
    _split,
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

_DIGEST_SPAN: Final = 1 << 20  # bytes of a file's head and tail in its source name
_TOKEN_RE: Final = re.compile(r"[-_.\s]+")


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
