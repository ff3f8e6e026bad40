-- 03_positions.sql: every open position now (as of the warehouse's last extract), valued at
-- the latest marks.
--
-- Answers: "who holds what, at what average price, and what is it worth?"
-- One row per account and symbol: net_qty (lot steps, + long, - short), lots (open lots),
-- cost (signed sum of remaining x open price), margin_held (account currency minor units),
-- mark (price units: the bid for a long, the ask for a short), unrealized_quote (decimal,
-- quote currency) and unrealized (decimal, the account's currency); NULL where the symbol
-- has no mark or no rate converts its quote currency.
--
-- Example: SELECT account_id, symbol, net_qty, unrealized FROM risk_positions
--          ORDER BY unrealized LIMIT 10

CREATE OR REPLACE VIEW risk_positions AS
SELECT p.account_id AS account_id, p.currency AS currency, p.symbol AS symbol,
       p.net_qty AS net_qty, p.lots AS lots, p.cost AS cost, p.margin_held AS margin_held,
       mk.trade_date AS mark_date, if(p.net_qty > 0, mk.bid, mk.ask) AS mark,
       i.quote AS quote_currency,
       toDecimal128(multiplyDecimal(toDecimal128(p.net_qty * mark - p.cost, 0),
                                    i.unit_value, 18), 18) AS unrealized_quote,
       toDecimal128(multiplyDecimal(unrealized_quote, r.rate, 18), 18) AS unrealized
FROM (
    SELECT l.account_id AS account_id, any(a.currency) AS currency, l.symbol AS symbol,
           sum(l.remaining) AS net_qty, count() AS lots, sum(l.remaining * l.price) AS cost,
           sum(l.margin) AS margin_held
    FROM (SELECT * FROM lots FINAL WHERE closed_ns IS NULL AND remaining != 0) AS l
    INNER JOIN (SELECT account_id, currency FROM accounts FINAL) AS a
        ON a.account_id = l.account_id
    GROUP BY l.account_id, l.symbol
) AS p
INNER JOIN instruments AS i ON i.symbol = p.symbol
LEFT JOIN risk_marks AS mk ON mk.symbol = p.symbol
LEFT JOIN risk_rates AS r ON r.from_currency = i.quote AND r.to_currency = p.currency
SETTINGS join_use_nulls = 1;
