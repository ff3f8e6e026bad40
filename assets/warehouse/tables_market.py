"""The warehouse's market data: accepted ticks copied from the lake, OHLCV bars, and the
instruments and currencies the risk desk's SQL values positions with.

``ticks`` holds the lake's accepted ticks column for column (``docs/lake.md``: prices in
price units, sizes in ``SIZE_SCALE`` units, UTC nanoseconds). A materialized view
aggregates every insert into ``ticks`` into ``bars_1m_state`` (AggregatingMergeTree), and
two more merge the 1-minute states that insert made into ``bars_1h_state`` and
``bars_1d_state`` (a cascade: the wide bars never read the ticks again, which made
ingestion about three times faster). The bars are kept as rows arrive, never rebuilt.
``bars_1m``, ``bars_1h`` and ``bars_1d`` (plain views in ``sql/01_bars.sql``, created in
the warehouse with the other ``sql/`` views) finalize the states into one row per symbol
and bucket.

A bar's price is the tick's trade price for a trade and its bid for a quote (the
convention of FX charts); ``tick_count`` counts the ticks, ``volume`` sums trade quantities
(``SIZE_SCALE`` units; quotes add none). A tick's bucket is the integer floor of
``ts_ns`` to the bar's width, so a tick at 59.999999999 s is in the bar of its minute, never
the next (a rounding ``time_bucket`` would move it). Days are UTC days.

``ticks`` and the bar tables are partitioned by the UTC day number (``intDiv(ts_ns, 86400
s)``): a lake day is one partition of each, so re-copying a day drops that partition
everywhere and inserts again (idempotent), and the views rebuild the day's bars from it.
"""

from __future__ import annotations

from assets.warehouse.ddl import TableSpec, ViewSpec

DAY_NS = 86_400 * 1_000_000_000
# Bar widths: (name, nanoseconds).
BAR_WIDTHS: tuple[tuple[str, int], ...] = (
    ("1m", 60 * 1_000_000_000),
    ("1h", 3_600 * 1_000_000_000),
    ("1d", DAY_NS),
)

TICKS = TableSpec(
    name="ticks",
    columns=(
        ("symbol", "LowCardinality(String)"),
        ("kind", "LowCardinality(String)"),
        ("ts_ns", "Int64"),
        ("recv_ns", "Int64"),
        ("bid", "Nullable(Int64)"),
        ("ask", "Nullable(Int64)"),
        ("bid_size", "Nullable(Int64)"),
        ("ask_size", "Nullable(Int64)"),
        ("price", "Nullable(Int64)"),
        ("qty", "Nullable(Int64)"),
        ("trade_id", "Nullable(String)"),
        ("source", "LowCardinality(String)"),
        ("source_seq", "Int64"),
        ("day", "Date32"),
    ),
    order_by=("symbol", "ts_ns", "source_seq"),
    partition_by=f"intDiv(ts_ns, {DAY_NS})",
    sharding_key="cityHash64(symbol)",
)


def _bar_table(width: str) -> TableSpec:
    return TableSpec(
        name=f"bars_{width}_state",
        columns=(
            ("symbol", "LowCardinality(String)"),
            ("bucket_ns", "Int64"),
            # The first and last price by (ts_ns, source_seq) (``ORDER_KEY``): ties in time
            # break by the feed's own order, so the bar is the same however the inserts
            # were split.
            ("open", "AggregateFunction(argMin, Int64, Int128)"),
            ("high", "SimpleAggregateFunction(max, Int64)"),
            ("low", "SimpleAggregateFunction(min, Int64)"),
            ("close", "AggregateFunction(argMax, Int64, Int128)"),
            ("tick_count", "SimpleAggregateFunction(sum, UInt64)"),
            ("volume", "SimpleAggregateFunction(sum, Int64)"),
        ),
        order_by=("symbol", "bucket_ns"),
        engine="aggregating",
        partition_by=f"intDiv(bucket_ns, {DAY_NS})",
        sharding_key="cityHash64(symbol)",
    )


# The price a bar follows: a trade's price, a quote's bid (rows with neither are left out,
# so the states can hold a plain Int64).
PRICE = "assumeNotNull(coalesce(price, bid))"
HAS_PRICE = "coalesce(price, bid) IS NOT NULL"
# (ts_ns, source_seq) as one Int128, ts_ns × 2^40 + source_seq (a feed's position stays far
# below 2^40): argMin over it costs half what it costs over the tuple (measured on chDB:
# 0.29 s against 0.60 s of states for 300 k ticks).
ORDER_KEY = "toInt128(ts_ns) * 1099511627776 + source_seq"


def _bar_view(width: str, width_ns: int) -> ViewSpec:
    if width == BAR_WIDTHS[0][0]:
        select = (
            f"SELECT symbol, intDiv(ts_ns, {width_ns}) * {width_ns} AS bucket_ns, "
            f"argMinState({PRICE}, {ORDER_KEY}) AS open, "
            f"max({PRICE}) AS high, min({PRICE}) AS low, "
            f"argMaxState({PRICE}, {ORDER_KEY}) AS close, "
            "toUInt64(count()) AS tick_count, toInt64(sum(coalesce(qty, 0))) AS volume "
            f"FROM ticks WHERE {HAS_PRICE} GROUP BY symbol, bucket_ns"
        )
        return ViewSpec(f"bars_{width}_mv", f"bars_{width}_state", "ticks", select)
    # Wider bars are merged from the 1-minute states an insert has just made (a cascade):
    # a few rows per minute instead of every tick again.
    minute = f"bars_{BAR_WIDTHS[0][0]}_state"
    select = (
        "SELECT symbol, wide AS bucket_ns, argMinMergeState(open) AS open, "
        "max(high) AS high, min(low) AS low, argMaxMergeState(close) AS close, "
        "sum(tick_count) AS tick_count, sum(volume) AS volume "
        f"FROM (SELECT *, intDiv(bucket_ns, {width_ns}) * {width_ns} AS wide FROM {minute}) "
        "GROUP BY symbol, wide"
    )
    return ViewSpec(f"bars_{width}_mv", f"bars_{width}_state", minute, select)


# Reference data the risk desk's SQL (``sql/``) values positions with: the catalogue's
# instruments and the currencies' minor units, replaced whole from ``trading`` by
# ``assets.market.load_reference``. ``unit_value`` is the quote-currency value of one lot
# step at one price unit: contract_size / (10^qty_precision × 10^price_precision).
INSTRUMENTS = TableSpec(
    name="instruments",
    columns=(
        ("symbol", "String"),
        ("asset_class", "String"),
        ("base", "String"),
        ("quote", "String"),
        ("price_precision", "Int32"),
        ("qty_precision", "Int32"),
        ("contract_size", "String"),
        ("unit_value", "Decimal(38, 18)"),
    ),
    order_by=("symbol",),
)
CURRENCIES = TableSpec(
    name="currencies",
    columns=(("currency", "String"), ("exponent", "Int32")),
    order_by=("currency",),
)
REFERENCE: tuple[TableSpec, ...] = (INSTRUMENTS, CURRENCIES)

BAR_TABLES = [_bar_table(width) for width, _ in BAR_WIDTHS]
TABLES: list[TableSpec] = [TICKS, *BAR_TABLES, *REFERENCE]
VIEWS: list[ViewSpec] = [_bar_view(width, ns) for width, ns in BAR_WIDTHS]
# Every table a lake day occupies one partition of.
DAY_PARTITIONED: tuple[str, ...] = (TICKS.name, *(t.name for t in BAR_TABLES))
