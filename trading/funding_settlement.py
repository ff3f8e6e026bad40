"""The payment provider's daily settlement file: the deposits and payouts it settled.

The provider's own record, which the daily reconciliation (``assets/recon``) holds against
the ledger. One CSV file per trading day (the day closes at the 17:00 New York cut-off,
``trading.trading_day``), ``HOME/psp/settlements/YYYY-MM-DD.csv``, a header line even when
the day settled nothing (docs/reconciliation.md):

    provider_ref,kind,account_id,currency,amount,settled_at

- ``provider_ref``: a deposit's reference at the provider (the deposit's ``provider_ref``;
  a deposit taken without one, by the back office or the simulation, is known to the
  provider by the broker's ledger reference, ``ref``); a payout's reference is the one the
  broker gave with the payout instruction, ``withdrawal:<id>``.
- ``kind``: ``deposit`` or ``withdrawal``; ``amount``: a positive plain decimal string in
  the currency's own number of decimals; ``settled_at``: ISO 8601 UTC, microseconds.

The simulated provider settles at the instant the broker books the money (a deposit's
credit, a payout's approval), so its file for a day holds exactly what the ledger booked
that day, unless something went wrong: that is what the reconciliation looks for.
``write_settlement_file`` writes one day's file from rows a simulator collected;
``write_settlement_files`` writes every day of a span from what the store shows the
provider processed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from sqlalchemy import Engine, select

from trading.money import exponent
from trading.store import schema as s
from trading.trading_day import cutoff_ns, trading_date_of, utc_text

COLUMNS: Final = ("provider_ref", "kind", "account_id", "currency", "amount", "settled_at")
HEADER: Final = ",".join(COLUMNS) + "\n"
SettlementKind = Literal["deposit", "withdrawal"]


@dataclass(frozen=True, slots=True)
class SettlementRow:
    provider_ref: str
    kind: SettlementKind
    account_id: int
    currency: str
    amount: Decimal  # major units of ``currency``, > 0
    settled_ns: int  # UTC nanoseconds

    def line(self) -> str:
        if self.kind not in ("deposit", "withdrawal"):
            raise ValueError(f"settlement kind {self.kind!r}: deposit or withdrawal")
        if not isinstance(self.amount, Decimal) or not self.amount > 0:
            raise ValueError(f"settlement {self.provider_ref}: amount {self.amount!r} is not "
                             "a positive Decimal")  # fmt: skip
        places = exponent(self.currency)
        text = format(self.amount.quantize(Decimal(1).scaleb(-places)), "f")
        if Decimal(text) != self.amount:
            raise ValueError(f"settlement {self.provider_ref}: {self.amount} has more than "
                             f"{places} decimals of {self.currency}")  # fmt: skip
        if "," in self.provider_ref or "\n" in self.provider_ref:
            raise ValueError(f"settlement reference {self.provider_ref!r}: no comma or newline")
        return (f"{self.provider_ref},{self.kind},{self.account_id},{self.currency},{text},"
                f"{utc_text(self.settled_ns)}\n")  # fmt: skip


def settlement_dir(home: Path) -> Path:
    return home / "psp" / "settlements"


def settlement_path(home: Path, day: dt.date) -> Path:
    return settlement_dir(home) / f"{day.isoformat()}.csv"


def write_settlement_file(home: Path, day: dt.date, rows: Iterable[SettlementRow]) -> Path:
    """Write (replace) one trading day's file; every row must have settled on that day.

    Written to a temporary name and renamed, so a reader (the reconciliation's sensor)
    never sees half a file. Bad rows raise ``ValueError`` and write nothing."""
    lines = [HEADER]
    for row in sorted(rows, key=lambda r: (r.settled_ns, r.kind, r.provider_ref)):
        if trading_date_of(row.settled_ns) != day:
            raise ValueError(f"settlement {row.provider_ref} settled on "
                             f"{trading_date_of(row.settled_ns)}, not on {day}")  # fmt: skip
        lines.append(row.line())
    path = settlement_path(home, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text("".join(lines), encoding="ascii")
    os.replace(tmp, path)
    return path


def _major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def settled_rows(engine: Engine, start_ns: int, end_ns: int) -> list[SettlementRow]:
    """What the simulated provider settled in ``start_ns < t <= end_ns``: every deposit the
    broker credited (the provider collected it) and every payout the broker approved."""
    d, w = s.deposits, s.withdrawals
    with engine.connect() as conn:
        deposits = conn.execute(
            select(d.c.provider_ref, d.c.ref, d.c.account_id, d.c.currency, d.c.amount,
                   d.c.ts_ns).where(d.c.ts_ns > start_ns, d.c.ts_ns <= end_ns)
        ).all()  # fmt: skip
        payouts = conn.execute(
            select(w.c.withdrawal_id, w.c.account_id, w.c.currency, w.c.amount, w.c.decided_ns)
            .where(w.c.status == "approved", w.c.decided_ns > start_ns, w.c.decided_ns <= end_ns)
        ).all()  # fmt: skip
    rows = [
        SettlementRow(r.provider_ref or r.ref, "deposit", r.account_id, r.currency,
                      _major(r.amount, r.currency), r.ts_ns)
        for r in deposits
    ]  # fmt: skip
    rows += [
        SettlementRow(f"withdrawal:{r.withdrawal_id}", "withdrawal", r.account_id, r.currency,
                      _major(r.amount, r.currency), r.decided_ns)
        for r in payouts
    ]  # fmt: skip
    return rows


def write_settlement_files(home: Path, engine: Engine, first_ns: int, last_ns: int) -> list[Path]:
    """The provider's file of every trading day from ``first_ns``'s to ``last_ns``'s (a day
    that settled nothing gets a file with its header only)."""
    day, last = trading_date_of(first_ns), trading_date_of(last_ns)
    written = []
    while day <= last:
        start = cutoff_ns(day - dt.timedelta(days=1))
        written.append(
            write_settlement_file(home, day, settled_rows(engine, start, cutoff_ns(day)))
        )
        day += dt.timedelta(days=1)
    return written
