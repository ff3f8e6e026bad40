-- 05_nearest_stop_out.sql: the accounts nearest stop-out now, lowest margin level first.
--
-- Answers: "whom will the next move stop out?" One row per account using margin: cash,
-- margin_held, unrealized (at the latest marks, rounded half even) and equity, in the
-- account currency's minor units; margin_level = equity / margin held x 100 (percent, four
-- places, as trading/risk.py computes it); room_to_stop_out: what equity can still lose
-- before the 50 % stop-out level (trading.risk.DEFAULT_STOP_OUT_LEVEL); unmarked: open
-- symbols without a mark or a rate (their PnL counts as zero).
--
-- Example: SELECT account_id, margin_level, room_to_stop_out FROM risk_nearest_stop_out
--          LIMIT 10

CREATE OR REPLACE VIEW risk_nearest_stop_out AS
SELECT a.account_id AS account_id, a.currency AS currency,
       m.cash AS cash, m.margin_held AS margin_held,
       toInt64(roundBankers(multiplyDecimal(ifNull(u.open_pnl, toDecimal128(0, 18)),
                                            toDecimal128(intExp10(c.exponent), 0), 18), 0))
           AS unrealized,
       m.cash + m.margin_held + unrealized AS equity,
       roundBankers(toDecimal128(divideDecimal(toDecimal128(equity * 100, 0),
                                               toDecimal128(m.margin_held, 0), 18), 18), 4)
           AS margin_level,
       equity - toInt64(roundBankers(divideDecimal(toDecimal128(m.margin_held, 0),
                                                   toDecimal128(2, 0), 1), 0))
           AS room_to_stop_out,
       ifNull(u.unmarked_symbols, '') AS unmarked
FROM (SELECT account_id, currency FROM accounts FINAL) AS a
INNER JOIN (
    SELECT la.account_id AS account_id, la.commodity AS currency,
           -sumIf(p.amount, splitByChar(':', la.code)[3] = 'cash') AS cash,
           -sumIf(p.amount, splitByChar(':', la.code)[3] = 'margin') AS margin_held
    FROM postings AS p
    INNER JOIN ledger_accounts AS la ON la.ledger_account_id = p.ledger_account_id
    WHERE startsWith(la.code, 'client:')
    GROUP BY la.account_id, la.commodity
) AS m ON m.account_id = a.account_id AND m.currency = a.currency
INNER JOIN currencies AS c ON c.currency = a.currency
LEFT JOIN (
    SELECT account_id, sum(ifNull(unrealized, toDecimal128(0, 18))) AS open_pnl,
           arrayStringConcat(arraySort(groupArrayIf(symbol, unrealized IS NULL)), ',')
               AS unmarked_symbols
    FROM risk_positions
    GROUP BY account_id
) AS u ON u.account_id = a.account_id
WHERE m.margin_held > 0
ORDER BY margin_level, account_id
SETTINGS join_use_nulls = 1;
