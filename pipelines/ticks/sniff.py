"""Is a file of the format it was given as? Judged by its first rows, not its name.

A replay given the wrong format must stop before it writes anything: read as HistData, a
TrueFX file would have every row rejected as malformed; read as TrueFX, a HistData file
would have its timestamps taken for symbols. ``mismatch`` reads the first data rows of a
file (or a Parquet file's column names) and says what does not fit; ``guess`` names the
format a file does fit, for the error message and for a directory replay that skips the
files of other formats.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import polars as pl

SAMPLE_ROWS: Final = 10  # data rows read; most of them must fit
_SHOWN: Final = 80  # characters of a row quoted in a message

_HISTDATA: Final = re.compile(r"^\d{8} \d{9},[^,]*,[^,]*,[^,]*$")
_TRUEFX_RAW: Final = re.compile(r"^[^,\d][^,]*,\d{8} \d{2}:\d{2}:\d{2}(\.\d+)?,[^,]*,[^,]*$")
_TRUEFX_ISO: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[^,]*,[^,]*,[^,]*$")

LAYOUTS: Final[dict[str, str]] = {
    "histdata": "HistData CSV rows 'YYYYMMDD HHMMSSfff,bid,ask,volume', no header",
    "truefx": "TrueFX CSV, 'timestamp,bid,ask' with ISO times or rows 'EUR/USD,YYYYMMDD "
    "HH:MM:SS.fff,bid,ask'",
    "binance-quotes": "Parquet with columns timestamp, bid, ask",
    "binance-trades": "Parquet with columns timestamp, price, quantity",
    "parquet": "Parquet with the tick columns symbol, kind, ts_ns",
}
_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "binance-quotes": ("timestamp", "bid", "ask"),
    "binance-trades": ("timestamp", "price", "quantity"),
    "parquet": ("symbol", "kind", "ts_ns"),
}
_CSV: Final = ("histdata", "truefx")
_PARQUET_MAGIC: Final = b"PAR1"


def mismatch(path: Path, fmt: str) -> str | None:
    """None when the first rows of ``path`` fit ``fmt``; else what was seen instead.

    Raises ``OSError`` when the file cannot be read.
    """
    if fmt in _CSV:
        if _is_parquet(path):
            return "a Parquet file"
        lines = _first_lines(path)
        if not lines:
            return "an empty file"
        if fmt == "truefx" and lines[0].lower().startswith("timestamp"):
            rows, pattern = lines[1:], _TRUEFX_ISO
        else:
            rows, pattern = lines, _HISTDATA if fmt == "histdata" else _TRUEFX_RAW
        fits = sum(1 for line in rows if pattern.match(line))
        if rows and 2 * fits > len(rows):
            return None
        return "rows " + "; ".join(repr(line[:_SHOWN]) for line in lines[:2])
    if not _is_parquet(path):
        lines = _first_lines(path)
        return "not Parquet: " + (repr(lines[0][:_SHOWN]) if lines else "an empty file")
    try:
        names = pl.scan_parquet(path).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        return f"a Parquet file that cannot be read ({exc})"
    missing = [c for c in _COLUMNS[fmt] if c not in names]
    return f"columns {names}" if missing else None


def guess(path: Path) -> str | None:
    """The format whose first rows ``path`` fits, if one does (the narrowest first)."""
    for fmt in ("histdata", "truefx", "parquet", "binance-trades", "binance-quotes"):
        try:
            if mismatch(path, fmt) is None:
                return fmt
        except OSError:
            return None
    return None


def describe(path: Path, fmt: str, seen: str) -> str:
    """The message for a file that is not of ``fmt``."""
    other = guess(path)
    hint = f"; it looks like --format {other}" if other and other != fmt else ""
    return f"{path}: not a {fmt} file: expected {LAYOUTS[fmt]}; saw {seen}{hint}"


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == _PARQUET_MAGIC


def _first_lines(path: Path) -> list[str]:
    """The first non-empty lines (at most ``SAMPLE_ROWS`` + 1: a header may lead)."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = [line.strip() for line in text.splitlines()]
    if len(head) == 64 * 1024 and len(lines) > 1:
        lines = lines[:-1]  # the last may be cut short
    return [line for line in lines if line][: SAMPLE_ROWS + 1]
