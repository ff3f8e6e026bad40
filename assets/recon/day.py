"""A trading day's reconciliation: every check, its breaks stored and written as CSV.

``build_reconciliation`` is what the ``reconciliation_breaks`` asset runs: the drop copy,
the settlement file and the ledger checks for ``Period.day(date)``, over the warehouse
mirror as last extracted. The breaks go to the warehouse (``breaks``, with the run in
``recon_runs``) and to ``REPORTS/YYYY-MM-DD/reconciliation/breaks.csv``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from assets.days import Period
from assets.recon.breaks import Break, store_breaks, write_breaks_csv
from assets.recon.dropcopy import reconcile_dropcopy
from assets.recon.ledger import reconcile_cash, reconcile_positions, reconcile_trial_balance
from assets.recon.settlement import reconcile_settlement
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.venues.dropcopy import dropcopy_dir


@dataclass(frozen=True)
class Reconciliation:
    period: Period
    breaks: list[Break]
    csv_path: Path
    dropcopy_rows: int
    settlement_rows: int
    run_ns: int
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def open(self) -> int:
        return sum(1 for b in self.breaks if b.status == "open")


def build_reconciliation(
    wh: Warehouse,
    period: Period,
    home: Path,
    reports_dir: Path,
    catalogue: Catalogue,
    *,
    venue: str = "bbook",
) -> Reconciliation:
    """Reconcile one trading day (``period`` is ``Period.day``); files are read under
    ``home`` (``venues/<venue>/dropcopy/``, ``psp/settlements/``)."""
    if period.first != period.last:
        raise ValueError(f"a reconciliation covers one trading day, not {period.label}")
    dropcopy = reconcile_dropcopy(wh, period, dropcopy_dir(home, venue), catalogue, venue=venue)
    settlement = reconcile_settlement(wh, period, home)
    breaks = [
        *dropcopy.breaks,
        *settlement.breaks,
        *reconcile_positions(wh, period),
        *reconcile_cash(wh, period),
        *reconcile_trial_balance(wh, period),
    ]
    run_ns = time.time_ns()
    day = period.last
    store_breaks(wh, day, run_ns, breaks, dropcopy_rows=dropcopy.rows,
                 settlement_rows=settlement.rows)  # fmt: skip
    path = write_breaks_csv(reports_dir, day, breaks)
    by_kind = dict(sorted(Counter(b.kind.value for b in breaks).items()))
    return Reconciliation(period, breaks, path, dropcopy.rows, settlement.rows, run_ns, by_kind)
