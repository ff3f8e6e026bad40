-- 02_marks.sql: the latest end-of-day mark of every symbol, and the conversion rates between
-- currencies at those marks.
--
-- Answers: "at what price is each symbol marked?", "how many USD is one EUR worth at the
-- marks?" The other risk views value positions with these.
-- risk_marks: one row per symbol with a mark: its newest trade_date, bid and ask (price
-- units), mid (a decimal in the quote currency) and the instrument's unit_value (the
-- quote-currency value of one lot step at one price unit).
-- risk_rates: units of to_currency per unit of from_currency at the marks' mid: a pair's
-- own mark, its inverse, or a cross through USD (as trading/fx.py converts), to 18
-- decimal places (ClickHouse's decimal division truncates there).
--
-- Example: SELECT rate FROM risk_rates WHERE from_currency = 'EUR' AND to_currency = 'USD'

CREATE OR REPLACE VIEW risk_marks AS
SELECT m.symbol AS symbol, m.last_date AS trade_date, m.last_bid AS bid, m.last_ask AS ask,
       toDecimal128(divideDecimal(toDecimal128(m.last_bid + m.last_ask, 0),
                                  toDecimal128(2 * intExp10(i.price_precision), 0), 18), 18) AS mid,
       i.base AS base, i.quote AS quote, i.unit_value AS unit_value
FROM (
    SELECT symbol, max(trade_date) AS last_date, argMax(bid, trade_date) AS last_bid,
           argMax(ask, trade_date) AS last_ask
    FROM eod_marks
    GROUP BY symbol
) AS m
INNER JOIN instruments AS i ON i.symbol = m.symbol;

CREATE OR REPLACE VIEW risk_rates AS
WITH direct AS (
    SELECT base AS from_currency, quote AS to_currency, mid AS rate
    FROM risk_marks WHERE position(symbol, '/') > 0
    UNION ALL
    SELECT quote, base, toDecimal128(divideDecimal(toDecimal128(1, 18), mid, 18), 18)
    FROM risk_marks WHERE position(symbol, '/') > 0
)
SELECT from_currency, to_currency, argMin(rate, priority) AS rate
FROM (
    SELECT currency AS from_currency, currency AS to_currency, toDecimal128(1, 18) AS rate,
           0 AS priority
    FROM currencies
    UNION ALL
    SELECT from_currency, to_currency, rate, 1 FROM direct
    UNION ALL
    SELECT a.from_currency, b.to_currency,
           toDecimal128(multiplyDecimal(a.rate, b.rate, 18), 18), 2
    FROM direct AS a INNER JOIN direct AS b ON a.to_currency = b.from_currency
    WHERE a.to_currency = 'USD' AND a.from_currency != b.to_currency
)
GROUP BY from_currency, to_currency;
