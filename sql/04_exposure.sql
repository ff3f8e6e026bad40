-- 04_exposure.sql: the house's exposure per symbol now: the opposite of its clients' net.
--
-- Answers: "where is the house long or short, and by how much in USD?"
-- One row per symbol held: client_net_qty, long_qty, short_qty (lot steps), accounts
-- holding it, house_net_qty (= -client_net_qty) and house_value_usd (decimal, USD, at the
-- latest mark's mid; NULL without a mark or a rate to USD).
--
-- Example: SELECT symbol, house_net_qty, house_value_usd FROM risk_exposure
--          ORDER BY abs(house_value_usd) DESC

CREATE OR REPLACE VIEW risk_exposure AS
SELECT e.symbol AS symbol, e.client_net_qty AS client_net_qty, e.long_qty AS long_qty,
       e.short_qty AS short_qty, e.accounts AS accounts, -e.client_net_qty AS house_net_qty,
       roundBankers(toDecimal128(multiplyDecimal(
           multiplyDecimal(toDecimal128(-e.client_net_qty * (mk.bid + mk.ask), 0),
                           mk.unit_value, 18),
           divideDecimal(r.rate, toDecimal128(2, 0), 18), 18), 18), 2) AS house_value_usd
FROM (
    SELECT symbol, sum(net_qty) AS client_net_qty, sumIf(net_qty, net_qty > 0) AS long_qty,
           -sumIf(net_qty, net_qty < 0) AS short_qty, count() AS accounts
    FROM risk_positions
    GROUP BY symbol
) AS e
LEFT JOIN risk_marks AS mk ON mk.symbol = e.symbol
LEFT JOIN risk_rates AS r ON r.from_currency = mk.quote AND r.to_currency = 'USD'
SETTINGS join_use_nulls = 1;
