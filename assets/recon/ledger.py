"""The ledger against the OMS's books and against itself, as of a day's closing cut-off.

- Positions: the OMS's open lots (each lot's quantity less what closed by the cut-off,
  summed per account and symbol) against the client position accounts' postings
  (``client:<id>:position:<COMMODITY>``, lot steps): ``position_mismatch``.
- Client money: the postings on each account's cash and margin accounts (margin is the
  client's money set aside, so the pair moves only with the client's own flows) against
  what the books say moved it: deposits, withdrawals requested less those rejected,
  realized PnL of lot closures, commissions of fills, financing: ``cash_mismatch``.
- Trial balance: every transaction of the day sums to zero per commodity, every posting of
  the day has its transaction, and each commodity's postings to date sum to zero:
  ``trial_balance``.

Everything is read as of the cut-off from append-only rows and change times, so a day
reconciled later gives the same answer. Amounts are integers (minor units, lot steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from assets.days import Period
from assets.recon.breaks import Break, BreakKind
from assets.warehouse.client import Warehouse
from trading.ledger import commodity_of
from trading.money import MINOR_UNIT_EXPONENT

OMS_POSITIONS = """
SELECT l.account_id AS account_id, l.symbol AS symbol,
       sum(l.qty - ifNull(c.closed, 0)) AS net
FROM (SELECT lot_id, account_id, symbol, qty FROM lots FINAL WHERE opened_ns <= {end:Int64}) AS l
LEFT JOIN (SELECT lot_id, sum(qty) AS closed FROM lot_closures
           WHERE closed_ns <= {end:Int64} GROUP BY lot_id) AS c ON c.lot_id = l.lot_id
GROUP BY account_id, symbol
HAVING net != 0
"""

# Client account codes are client:<account id>:<kind>:<commodity>.
LEDGER_BY_KIND = """
SELECT a.account_id AS account_id, a.commodity AS commodity, sum(p.amount) AS amount
FROM postings AS p
INNER JOIN ledger_accounts AS a ON a.ledger_account_id = p.ledger_account_id
WHERE p.ts_ns <= {end:Int64} AND splitByChar(':', a.code)[1] = 'client'
  AND splitByChar(':', a.code)[3] IN {kinds:Array(String)}
GROUP BY account_id, commodity
HAVING amount != 0
"""

# What moved client money (> 0: the client's money grew), per account and currency.
CLIENT_FLOWS = """
SELECT account_id, currency, sum(amount) AS amount FROM (
    SELECT account_id, currency, amount FROM deposits WHERE ts_ns <= {end:Int64}
    UNION ALL
    SELECT account_id, currency, -amount FROM withdrawals FINAL
    WHERE requested_ns <= {end:Int64}
    UNION ALL
    SELECT account_id, currency, amount FROM withdrawals FINAL
    WHERE status = 'rejected' AND decided_ns <= {end:Int64}
    UNION ALL
    SELECT c.account_id, a.currency, c.realized FROM lot_closures AS c
    INNER JOIN (SELECT account_id, currency FROM accounts FINAL) AS a
        ON a.account_id = c.account_id
    WHERE c.closed_ns <= {end:Int64}
    UNION ALL
    SELECT e.account_id, a.currency, -e.commission FROM executions AS e
    INNER JOIN (SELECT account_id, currency FROM accounts FINAL) AS a
        ON a.account_id = e.account_id
    WHERE e.ts_ns <= {end:Int64} AND e.commission != 0
    UNION ALL
    -- financing is posted when the rollover runs, after its cut-off: the posting's time
    SELECT f.account_id, f.currency, f.amount FROM financing AS f
    INNER JOIN ledger_txns AS t ON t.txn_id = f.txn_id
    WHERE f.txn_id IS NOT NULL AND t.ts_ns <= {end:Int64}
)
GROUP BY account_id, currency
HAVING amount != 0
"""

UNBALANCED_TXNS = """
SELECT txn_id, commodity, sum(amount) AS total FROM postings
WHERE ts_ns > {start:Int64} AND ts_ns <= {end:Int64}
GROUP BY txn_id, commodity HAVING total != 0 ORDER BY txn_id, commodity
"""

ORPHAN_POSTINGS = """
SELECT p.posting_id, p.txn_id FROM postings AS p
LEFT ANTI JOIN (SELECT txn_id FROM ledger_txns) AS t ON t.txn_id = p.txn_id
WHERE p.ts_ns > {start:Int64} AND p.ts_ns <= {end:Int64}
ORDER BY p.posting_id
"""

EMPTY_TXNS = """
SELECT t.txn_id FROM ledger_txns AS t
LEFT ANTI JOIN (SELECT DISTINCT txn_id FROM postings) AS p ON p.txn_id = t.txn_id
WHERE t.ts_ns > {start:Int64} AND t.ts_ns <= {end:Int64}
ORDER BY t.txn_id
"""

UNBALANCED_COMMODITIES = """
SELECT commodity, sum(amount) AS total FROM postings WHERE ts_ns <= {end:Int64}
GROUP BY commodity HAVING total != 0 ORDER BY commodity
"""


def _params(period: Period, **more: Any) -> dict[str, Any]:
    return {"start": period.start_ns, "end": period.end_ns, **more}


def _sums(rows: Iterable[Sequence[Any]]) -> dict[tuple[int, str], int]:
    return {(int(a), str(c)): int(v) for a, c, v in rows}


def reconcile_positions(wh: Warehouse, period: Period) -> list[Break]:
    lots = {
        (account, commodity_of(symbol)): (symbol, int(net))
        for account, symbol, net in wh.rows(OMS_POSITIONS, _params(period))
    }
    ledger = _sums(wh.rows(LEDGER_BY_KIND, _params(period, kinds=["position"])))
    breaks = []
    for key in sorted(set(lots) | set(ledger)):
        symbol, held = lots.get(key, (key[1], 0))
        posted = ledger.get(key, 0)
        if held != posted:
            account, commodity = key
            breaks.append(Break(BreakKind.POSITION_MISMATCH, f"account:{account}:{commodity}",
                                f"open lots of {symbol} hold {held} lot steps, the ledger's "
                                f"position account {posted}"))  # fmt: skip
    return breaks


def reconcile_cash(wh: Warehouse, period: Period) -> list[Break]:
    # Client money is a liability: the postings are negative while the client has money.
    posted = {
        key: -amount
        for key, amount in _sums(
            wh.rows(LEDGER_BY_KIND, _params(period, kinds=["cash", "margin"]))
        ).items()
    }
    flows = _sums(wh.rows(CLIENT_FLOWS, _params(period)))
    breaks = []
    for key in sorted(set(posted) | set(flows)):
        ledger, books = posted.get(key, 0), flows.get(key, 0)
        if ledger != books:
            account, currency = key
            breaks.append(Break(BreakKind.CASH_MISMATCH, f"account:{account}:{currency}",
                                f"client money in the ledger {_money(ledger, currency)}, from "
                                f"deposits, withdrawals, PnL, commissions and financing "
                                f"{_money(books, currency)}"))  # fmt: skip
    return breaks


def reconcile_trial_balance(wh: Warehouse, period: Period) -> list[Break]:
    p = _params(period)
    breaks = [
        Break(BreakKind.TRIAL_BALANCE, f"txn:{txn}", f"{commodity} postings sum to {total}")
        for txn, commodity, total in wh.rows(UNBALANCED_TXNS, p)
    ]
    breaks += [
        Break(BreakKind.TRIAL_BALANCE, f"posting:{posting}", f"its transaction {txn} is missing")
        for posting, txn in wh.rows(ORPHAN_POSTINGS, p)
    ]
    breaks += [
        Break(BreakKind.TRIAL_BALANCE, f"txn:{txn}", "a transaction without postings")
        for (txn,) in wh.rows(EMPTY_TXNS, p)
    ]
    breaks += [
        Break(BreakKind.TRIAL_BALANCE, f"commodity:{commodity}",
              f"all postings to date sum to {total}, not zero")
        for commodity, total in wh.rows(UNBALANCED_COMMODITIES, p)
    ]  # fmt: skip
    return breaks


def _money(minor: int, currency: str) -> str:
    places = MINOR_UNIT_EXPONENT.get(currency, 0)
    return f"{format(Decimal(minor).scaleb(-places), 'f')} {currency}"
