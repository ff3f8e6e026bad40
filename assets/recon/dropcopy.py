"""Internal executions against the venue's drop copy, for one trading day.

The venue's file (``trading.venues.dropcopy``: one CSV per trading day) is read with
Polars; the store's fills of the day come from the warehouse mirror (executions, with each
order's symbol and side). Only fills are reconciled: the B-book's acknowledgements, cancels
and expiries are in the copy for the record, but the store keeps no row of them to match.
The file's decimal quantities and prices are turned into the instrument's stored integers
(lot steps, price units) before they are compared, so ``1.1`` and ``1.10000`` are equal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.days import Period
from assets.recon.breaks import Break, BreakKind
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.errors import UnknownSymbol
from trading.venues.base import ExecKind
from trading.venues.dropcopy import COLUMNS, dropcopy_path

_DECIMAL = r"^\d+(\.\d+)?$"
_INTS = ("order_id", "account_id", "ts_ns")
_SHOWN_BAD_ROWS = 5

INTERNAL_FILLS = """
SELECT e.exec_id AS exec_id, e.order_id AS order_id, e.account_id AS account_id,
       o.symbol AS symbol, o.side AS side, e.qty AS qty, e.price AS price, e.ts_ns AS ts_ns
FROM executions AS e
LEFT JOIN (SELECT order_id, symbol, side FROM orders FINAL) AS o ON o.order_id = e.order_id
WHERE e.ts_ns > {start:Int64} AND e.ts_ns <= {end:Int64}
  AND e.venue = {venue:String} AND e.kind = 'fill'
"""


@dataclass(frozen=True)
class DropCopyResult:
    breaks: list[Break]
    rows: int  # rows read from the venue's file


def internal_fills(wh: Warehouse, period: Period, venue: str) -> pl.DataFrame:
    table = wh.arrow(INTERNAL_FILLS, {"start": period.start_ns, "end": period.end_ns,
                                      "venue": venue})  # fmt: skip
    return pl.from_arrow(table)  # type: ignore[return-value]


def read_dropcopy(path: Path) -> tuple[pl.DataFrame, list[Break]]:
    """The file's rows that are well formed, typed, and a ``file_invalid`` break for the
    header or the rows that are not (those rows are left out of the comparison)."""
    ref = str(path)
    try:
        raw = pl.read_csv(path, infer_schema=False, has_header=True)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        return _empty(), [Break(BreakKind.FILE_INVALID, ref, f"unreadable: {exc}")]
    if tuple(raw.columns) != COLUMNS:
        detail = f"header {','.join(raw.columns)!r}, expected {','.join(COLUMNS)!r}"
        return _empty(), [Break(BreakKind.FILE_INVALID, ref, detail)]
    raw = raw.with_row_index("line", offset=2)
    typed = raw.with_columns(
        *(pl.col(c).str.strip_chars().cast(pl.Int64, strict=False) for c in _INTS),
        pl.col("exec_id").str.strip_chars(),
        pl.col("kind").str.strip_chars(),
    )
    fill = pl.col("kind") == "fill"
    ok = (
        pl.all_horizontal(*(pl.col(c).is_not_null() for c in _INTS))
        & pl.col("exec_id").is_not_null()
        & (pl.col("exec_id") != "")
        & pl.col("kind").is_in([k.value for k in ExecKind])
        & (~fill | (pl.col("qty").str.contains(_DECIMAL) & pl.col("price").str.contains(_DECIMAL)))
    ).fill_null(False)
    bad = typed.filter(~ok)
    breaks = []
    if bad.height:
        lines = ", ".join(str(n) for n in bad["line"].head(_SHOWN_BAD_ROWS).to_list())
        more = "" if bad.height <= _SHOWN_BAD_ROWS else ", ..."
        breaks.append(Break(BreakKind.FILE_INVALID, ref,
                            f"{bad.height} malformed row(s), lines {lines}{more}"))  # fmt: skip
    return typed.filter(ok), breaks


def _empty() -> pl.DataFrame:
    schema = {c: pl.Int64 if c in _INTS else pl.String for c in COLUMNS}
    return pl.DataFrame(schema={"line": pl.UInt32, **schema})


def _scaled(text: pl.Expr, places: pl.Expr) -> pl.Expr:
    """A decimal string as the integer of ``places`` decimals it stands for; null when it
    has more significant decimals than that (it cannot be a stored value)."""
    parts = text.str.split_exact(".", 1)
    whole = parts.struct.field("field_0").cast(pl.Int64)
    frac = parts.struct.field("field_1").fill_null("").str.strip_chars_end("0")
    digits = frac.str.len_chars().cast(pl.Int64)
    frac_int = pl.when(digits == 0).then(0).otherwise(frac.cast(pl.Int64, strict=False))
    scaled = whole * pl.lit(10).pow(places) + frac_int * pl.lit(10).pow(places - digits)
    return pl.when(digits <= places).then(scaled).otherwise(None)


def _precisions(catalogue: Catalogue) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [i.symbol for i in catalogue],
            "qty_places": [i.qty_precision for i in catalogue],
            "price_places": [i.price_precision for i in catalogue],
        },
        schema={"symbol": pl.String, "qty_places": pl.Int64, "price_places": pl.Int64},
    )


def reconcile_dropcopy(
    wh: Warehouse,
    period: Period,
    directory: Path,
    catalogue: Catalogue,
    *,
    venue: str = "bbook",
) -> DropCopyResult:
    """Breaks between the day's stored fills on ``venue`` and its drop copy in ``directory``."""
    day: dt.date = period.last
    path = dropcopy_path(directory, day.isoformat())
    internal = internal_fills(wh, period, venue)
    if not path.exists():
        if internal.height == 0:
            return DropCopyResult([], 0)
        detail = f"no drop copy of {venue} for {day}; {internal.height} fill(s) stored"
        return DropCopyResult([Break(BreakKind.FILE_MISSING, str(path), detail)], 0)
    copy, breaks = read_dropcopy(path)
    fills = copy.filter(pl.col("kind") == "fill")
    breaks += _duplicates(fills, "in the venue's drop copy")
    breaks += _duplicates(internal, "in the stored executions")
    venue_fills = fills.unique("exec_id", keep="first", maintain_order=True)
    stored = internal.unique("exec_id", keep="first", maintain_order=True)
    for row in venue_fills.join(stored, on="exec_id", how="anti").iter_rows(named=True):
        what = (
            f"order {row['order_id']} ({row['symbol']} {row['side']} {row['qty']} @ {row['price']})"
        )
        breaks.append(
            Break(BreakKind.MISSING, row["exec_id"], f"venue fill of {what} is not stored")
        )
    for row in stored.join(venue_fills, on="exec_id", how="anti").iter_rows(named=True):
        breaks.append(Break(BreakKind.EXTRA, row["exec_id"],
                            f"stored fill of order {row['order_id']} ({row['symbol']} "
                            f"{row['side']}) is not in the venue's drop copy"))  # fmt: skip
    breaks += _compare(venue_fills, stored, catalogue)
    return DropCopyResult(breaks, copy.height)


def _duplicates(frame: pl.DataFrame, where: str) -> list[Break]:
    counts = frame.group_by("exec_id").len().filter(pl.col("len") > 1).sort("exec_id")
    return [
        Break(BreakKind.DUPLICATE_EXEC_ID, exec_id, f"{n} rows with this exec id {where}")
        for exec_id, n in counts.iter_rows()
    ]


def _compare(venue: pl.DataFrame, stored: pl.DataFrame, catalogue: Catalogue) -> list[Break]:
    both = (
        venue.join(stored, on="exec_id", how="inner", suffix="_stored")
        .join(_precisions(catalogue), left_on="symbol_stored", right_on="symbol", how="left")
        .with_columns(
            _scaled(pl.col("qty"), pl.col("qty_places")).alias("qty_int"),
            _scaled(pl.col("price"), pl.col("price_places")).alias("price_int"),
        )
        .sort("exec_id")
    )
    breaks: list[Break] = []
    for row in both.iter_rows(named=True):
        exec_id = row["exec_id"]
        symbol = row["symbol_stored"]
        if row["qty_int"] != row["qty_stored"]:
            stored_qty = _shown(catalogue, symbol, row["qty_stored"], price=False)
            breaks.append(Break(BreakKind.QTY_MISMATCH, exec_id,
                                f"venue qty {row['qty']}, stored {stored_qty}"))  # fmt: skip
        if row["price_int"] != row["price_stored"]:
            stored_px = _shown(catalogue, symbol, row["price_stored"], price=True)
            breaks.append(Break(BreakKind.PRICE_MISMATCH, exec_id,
                                f"venue price {row['price']}, stored {stored_px}"))  # fmt: skip
        differ = [
            f"{name} venue {row[name]} stored {row[name + '_stored']}"
            for name in ("order_id", "account_id", "symbol", "side", "ts_ns")
            if row[name] != row[name + "_stored"]
        ]
        if differ:
            breaks.append(Break(BreakKind.FIELD_MISMATCH, exec_id, "; ".join(differ)))
    return breaks


def _shown(catalogue: Catalogue, symbol: str, value: int, *, price: bool) -> str:
    """A stored integer in the instrument's units, or as is when the symbol is unknown."""
    try:
        inst = catalogue.get(symbol)
    except UnknownSymbol:
        return f"{value} (stored units, unknown symbol {symbol!r})"
    return format(inst.price_from_int(value) if price else inst.qty_from_int(value), "f")
