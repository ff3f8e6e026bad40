-- 01_bars.sql: OHLCV bars per symbol, 1 minute, 1 hour and 1 day (UTC days).
--
-- Answers: "what did EUR/USD do between 14:00 and 15:00?", "which symbols moved most today?"
-- The materialized views bars_1m_mv, bars_1h_mv and bars_1d_mv keep aggregate states in
-- bars_<width>_state as ticks are inserted (assets/warehouse/tables_market.py); these views
-- finalize them. bucket_ns is the bar's start, UTC nanoseconds: the integer floor of the
-- tick's ts_ns to the width, so a tick at 14:00:59.999999999 is in the 14:00 bar.
-- Prices are in the instrument's price units (divide by 10^price_precision): a trade's
-- price, or a quote's bid. tick_count counts the ticks; volume sums trade quantities
-- (units of the underlying x 10^8; quotes add none).
--
-- Example: SELECT * FROM bars_1h WHERE symbol = 'EUR/USD' ORDER BY bucket_ns DESC LIMIT 24

CREATE OR REPLACE VIEW bars_1m AS
SELECT symbol, bucket_ns, argMinMerge(open) AS open, max(high) AS high, min(low) AS low,
       argMaxMerge(close) AS close, sum(tick_count) AS tick_count, sum(volume) AS volume
FROM bars_1m_state
GROUP BY symbol, bucket_ns;

CREATE OR REPLACE VIEW bars_1h AS
SELECT symbol, bucket_ns, argMinMerge(open) AS open, max(high) AS high, min(low) AS low,
       argMaxMerge(close) AS close, sum(tick_count) AS tick_count, sum(volume) AS volume
FROM bars_1h_state
GROUP BY symbol, bucket_ns;

CREATE OR REPLACE VIEW bars_1d AS
SELECT symbol, bucket_ns, argMinMerge(open) AS open, max(high) AS high, min(low) AS low,
       argMaxMerge(close) AS close, sum(tick_count) AS tick_count, sum(volume) AS volume
FROM bars_1d_state
GROUP BY symbol, bucket_ns;
