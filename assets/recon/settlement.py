"""Ledger deposits and payouts against the payment provider's settlement file, for a day.

The ledger's side: every transaction of the day that moved money through the provider's
clearing account (``house:psp_clearing:<ccy>``): deposits (``deposit``: the clearing account
debited) and approved withdrawals (``withdrawal_approved``: credited), each known to the
provider by its reference (``trading.funding_settlement``): a deposit's provider reference,
else its ledger reference; a payout's ``withdrawal:<id>``. The provider's side: its file of
the day. They are matched on (kind, reference); a day settles a handful of rows per
thousand accounts, so the file is read with the csv module and amounts compared as exact
decimals.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from assets.days import Period
from assets.recon.breaks import Break, BreakKind
from assets.warehouse.client import Warehouse
from trading.funding_settlement import COLUMNS, settlement_path
from trading.money import MINOR_UNIT_EXPONENT

LEDGER_MOVES = """
SELECT t.kind AS kind,
       if(t.kind = 'deposit', coalesce(d.provider_ref, t.ref), t.ref) AS provider_ref,
       t.txn_id AS txn_id, t.account_id AS account_id, p.commodity AS currency,
       sum(p.amount) AS amount
FROM ledger_txns AS t
INNER JOIN postings AS p ON p.txn_id = t.txn_id
INNER JOIN ledger_accounts AS a ON a.ledger_account_id = p.ledger_account_id
LEFT JOIN deposits AS d ON d.txn_id = t.txn_id
WHERE t.ts_ns > {start:Int64} AND t.ts_ns <= {end:Int64}
  AND p.ts_ns > {start:Int64} AND p.ts_ns <= {end:Int64}
  AND t.kind IN ('deposit', 'withdrawal_approved')
  AND startsWith(a.code, 'house:psp_clearing:')
GROUP BY kind, provider_ref, txn_id, account_id, currency
ORDER BY txn_id
"""

_PLAIN = re.compile(r"\d+(\.\d+)?")
_KINDS = {"deposit": "deposit", "withdrawal_approved": "withdrawal"}


@dataclass(frozen=True)
class Move:
    """One settlement, from either side: amounts in minor units."""

    kind: str  # deposit | withdrawal
    provider_ref: str
    account_id: int | None
    currency: str
    amount: int
    where: str  # "txn 12" or "line 3"


@dataclass(frozen=True)
class SettlementResult:
    breaks: list[Break]
    rows: int  # rows read from the provider's file


def ledger_moves(wh: Warehouse, period: Period) -> list[Move]:
    rows = wh.rows(LEDGER_MOVES, {"start": period.start_ns, "end": period.end_ns})
    return [
        Move(_KINDS[kind], ref or f"txn:{txn_id}", account_id, currency,
             amount if kind == "deposit" else -amount, f"txn {txn_id}")
        for kind, ref, txn_id, account_id, currency, amount in rows
    ]  # fmt: skip


def _minor(text: str, currency: str) -> int | None:
    """A positive decimal string of ``currency`` in minor units; None when it is not one."""
    places = MINOR_UNIT_EXPONENT.get(currency)
    if places is None or not _PLAIN.fullmatch(text):
        return None
    scaled = Decimal(text).scaleb(places)
    if scaled <= 0 or scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def read_settlement(path: Path) -> tuple[list[Move], list[Break]]:
    """The file's well-formed rows, and a ``file_invalid`` break for what is not."""
    ref = str(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [Break(BreakKind.FILE_INVALID, ref, f"unreadable: {exc}")]
    if not rows or tuple(rows[0]) != COLUMNS:
        found = ",".join(rows[0]) if rows else "nothing"
        detail = f"header {found!r}, expected {','.join(COLUMNS)!r}"
        return [], [Break(BreakKind.FILE_INVALID, ref, detail)]
    moves, bad = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        move = _move(row, line)
        if move is None:
            bad.append(line)
        else:
            moves.append(move)
    breaks = []
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        breaks.append(Break(BreakKind.FILE_INVALID, ref,
                            f"{len(bad)} malformed row(s), lines {shown}"))  # fmt: skip
    return moves, breaks


def _move(row: list[str], line: int) -> Move | None:
    if len(row) != len(COLUMNS):
        return None
    ref, kind, account, currency, amount, settled_at = (c.strip() for c in row)
    minor = _minor(amount, currency)
    if not ref or kind not in ("deposit", "withdrawal") or not account.isdigit() or minor is None:
        return None
    try:
        dt.datetime.fromisoformat(settled_at)
    except ValueError:
        return None
    return Move(kind, ref, int(account), currency, minor, f"line {line}")


def reconcile_settlement(wh: Warehouse, period: Period, home: Path) -> SettlementResult:
    """Breaks between the day's ledger moves through the provider and its settlement file."""
    day = period.last
    path = settlement_path(home, day)
    booked = ledger_moves(wh, period)
    if not path.exists():
        if not booked:
            return SettlementResult([], 0)
        detail = f"no settlement file for {day}; {len(booked)} deposit(s)/payout(s) booked"
        return SettlementResult([Break(BreakKind.FILE_MISSING, str(path), detail)], 0)
    settled, breaks = read_settlement(path)
    ledger_by_key = {(m.kind, m.provider_ref): m for m in booked}
    seen: set[tuple[str, str]] = set()
    for m in settled:
        key = (m.kind, m.provider_ref)
        mine = ledger_by_key.get(key)
        if key in seen or mine is None:
            why = "settled twice" if key in seen else "not in the ledger"
            breaks.append(Break(BreakKind.SETTLEMENT_EXTRA, m.provider_ref,
                                f"{m.kind} of {_text(m)} to account {m.account_id} "
                                f"({m.where}): {why}"))  # fmt: skip
            seen.add(key)
            continue
        seen.add(key)
        if (m.amount, m.currency) != (mine.amount, mine.currency):
            breaks.append(Break(BreakKind.AMOUNT_MISMATCH, m.provider_ref,
                                f"{m.kind}: settled {_text(m)} ({m.where}), booked "
                                f"{_text(mine)} ({mine.where})"))  # fmt: skip
        if m.account_id != mine.account_id:
            breaks.append(Break(BreakKind.FIELD_MISMATCH, m.provider_ref,
                                f"{m.kind}: settled for account {m.account_id}, booked on "
                                f"account {mine.account_id}"))  # fmt: skip
    for key, mine in ledger_by_key.items():
        if key not in seen:
            breaks.append(Break(BreakKind.SETTLEMENT_MISSING, mine.provider_ref,
                                f"{mine.kind} of {_text(mine)} on account {mine.account_id} "
                                f"({mine.where}) is not in the provider's file"))  # fmt: skip
    return SettlementResult(breaks, len(settled))


def _text(m: Move) -> str:
    places = MINOR_UNIT_EXPONENT.get(m.currency, 0)
    return f"{format(Decimal(m.amount).scaleb(-places), 'f')} {m.currency}"
