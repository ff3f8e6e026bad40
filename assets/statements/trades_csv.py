"""trades.csv for every account at once, its lines formatted by the warehouse.

An end of day can hold millions of fills; formatting each one in Python (times, decimal
strings, CSV quoting) costs more than everything else a statement does. ClickHouse formats
them in one query instead, byte for byte as ``csv_out.trade_rows`` and ``csv.writer`` would
(a test holds the two equal), and Python only cuts the sorted lines into accounts.
"""

from __future__ import annotations

from assets.days import Period
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.money import MINOR_UNIT_EXPONENT


def sql_decimal(value: str, digits: str) -> str:
    """SQL of an integer ``value`` scaled down by ``digits`` decimals, as a plain decimal
    string with exactly that many decimals (``-1234``, 2 -> ``-12.34``)."""
    scale = f"intExp10({digits})"
    fraction = f"leftPad(toString(abs({value}) % {scale}), {digits}, '0')"
    return (
        f"concat(if({value} < 0, '-', ''), toString(intDiv(abs({value}), {scale})), "
        f"if({digits} > 0, concat('.', {fraction}), ''))"
    )


def sql_field(text: str) -> str:
    """SQL quoting a text field as ``csv.writer`` does (minimal quoting, quotes doubled)."""
    return (
        f"if(multiSearchAny({text}, [',', '\"', '\\n']), "
        f"concat('\"', replaceAll({text}, '\"', '\"\"'), '\"'), {text})"
    )


def _digits(column: str, param: str) -> str:
    return f"transform({column}, {{{param}_k:Array(String)}}, {{{param}_v:Array(UInt8)}}, 0)"


_TIME = (
    "concat(formatDateTime(toDateTime(intDiv(e.ts_ns, 1000000000), 'UTC'), "
    "'%Y-%m-%dT%H:%i:%S', 'UTC'), '.', leftPad(toString(e.ts_ns % 1000000000), 9, '0'), 'Z')"
)


def trade_lines(wh: Warehouse, period: Period, catalogue: Catalogue) -> dict[int, tuple[str, int]]:
    """Per account: the data lines of its trades.csv (each ending in a newline) and their
    count, the period's fills oldest first, as ``csv_out.TRADES_COLUMNS`` lays them out."""
    bounds = {"start": period.start_ns, "end": period.end_ns}
    fills = (
        "SELECT * FROM executions WHERE kind = 'fill' "
        "AND ts_ns > {start:Int64} AND ts_ns <= {end:Int64}"
    )
    symbols = [str(r[0]) for r in wh.rows(
        f"SELECT DISTINCT o.symbol FROM ({fills}) AS e "
        "INNER JOIN (SELECT order_id, symbol FROM orders FINAL) AS o ON o.order_id = e.order_id",
        bounds,
    )]  # fmt: skip
    instruments = [catalogue.get(s) for s in symbols]  # an unknown symbol is refused here
    currencies = sorted(MINOR_UNIT_EXPONENT)
    params = {
        **bounds,
        "qty_k": symbols, "qty_v": [i.qty_precision for i in instruments],
        "px_k": symbols, "px_v": [i.price_precision for i in instruments],
        "ccy_k": currencies, "ccy_v": [MINOR_UNIT_EXPONENT[c] for c in currencies],
    }  # fmt: skip
    qty_d = _digits("o.symbol", "qty")
    px_d = _digits("o.symbol", "px")
    ccy_d = _digits("a.currency", "ccy")
    fields = [
        _TIME, sql_field("e.exec_id"), "toString(e.order_id)", sql_field("o.symbol"),
        sql_field("o.side"), sql_decimal("e.qty", qty_d), sql_decimal("e.price", px_d),
        sql_decimal("e.commission", ccy_d), sql_decimal("ifNull(c.realized, 0)", ccy_d),
        sql_field("a.currency"),
    ]  # fmt: skip
    table = wh.arrow(
        f"""
        SELECT e.account_id AS account_id, concat({", ',', ".join(fields)}, '\\n') AS line
        FROM ({fills}) AS e
        INNER JOIN (SELECT order_id, symbol, side FROM orders FINAL) AS o
          ON o.order_id = e.order_id
        INNER JOIN (SELECT account_id, currency FROM accounts FINAL) AS a
          ON a.account_id = e.account_id
        LEFT JOIN (SELECT close_exec_id, sum(realized) AS realized FROM lot_closures
                   GROUP BY close_exec_id) AS c ON c.close_exec_id = e.exec_id
        ORDER BY e.account_id, e.ts_ns, e.exec_id
        """,
        params,
    )
    accounts = table.column("account_id").to_pylist()
    lines = table.column("line").to_pylist()
    out: dict[int, tuple[str, int]] = {}
    start = 0
    for i in range(1, len(accounts) + 1):
        if i == len(accounts) or accounts[i] != accounts[start]:
            out[int(accounts[start])] = ("".join(lines[start:i]), i - start)
            start = i
    return out
