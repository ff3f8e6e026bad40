"""What every vendor format shares (``pipelines.ticks.formats``): the feed and batch types,
the float-to-integer quantization of prices and sizes, the row checks' building blocks and
the split of parsed rows into ticks and rejects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from pipelines.ticks.schema import (
    KIND_DTYPE,
    REASON_DTYPE,
    REJECTED_SCHEMA,
    SIZE_SCALE,
    TICK_SCHEMA,
    Kind,
    Reason,
    conform,
)
from trading.catalogue import Catalogue
from trading.errors import UnknownSymbol
from trading.instrument import Instrument

# A batch's rejects: the lake's rejected-tick columns but its partition day.
REJECT_SCHEMA: dict[str, pl.DataType] = {c: t for c, t in REJECTED_SCHEMA.items() if c != "day"}

_DETAIL_TEXT_MAX: Final = 200  # raw text quoted in a reject's detail, in characters
_FIELD_TEXT_MAX: Final = 40  # a field quoted in a detail, in characters
_NS_PER_MS: Final = 1_000_000


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


def _canonical(raw: Iterable[str | None], catalogue: Catalogue) -> dict[str | None, str | None]:
    """Each raw in-file symbol -> its canonical symbol, or None if the catalogue lacks it."""
    out: dict[str | None, str | None] = {}
    for name in raw:
        try:
            out[name] = catalogue.resolve(name).symbol if name is not None else None
        except UnknownSymbol:
            out[name] = None
    return out


# A check: (condition true on a faulty row, the problem as text). Conditions are evaluated on
# every row; the texts only on the rows that fail, so clean files pay for booleans only.
Check = tuple[pl.Expr, pl.Expr]


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
