"""A venue's drop copy: every execution report it emits, one CSV file per trading day.

The venue's own record of what it did, kept apart from the OMS's store so that the daily
reconciliation (``assets/recon``) can hold the two against each other. The layout
(``docs/reconciliation.md``): ``DIR/YYYY-MM-DD.csv`` per trading day (the day closes at the
17:00 New York cut-off, ``trading.trading_day``), the B-book's under
``HOME/venues/bbook/dropcopy/``, one header line, then one row per report:

    exec_id,order_id,account_id,symbol,side,qty,price,ts_ns,kind

``qty`` and ``price`` are plain decimal strings in the instrument's units (lots, price):
the fill's quantity and price for a fill; ``0`` and empty for every other report
(acknowledgements, cancels, expiries...), which are copied too.

When a row is written. The B-book venue lives in the OMS's process and its state is
rolled back with the OMS's (``reset``/``restore`` after a failed commit), so a report of a
batch the store refused never happened: its rows wait in memory (``record``) and are
appended when the OMS says the batch is stored (``committed``, called after the commit,
with the exec ids it applied), and dropped on ``discard`` (the venue's reset). Appends are
buffered: one write and one flush per committed batch, none per report. A venue in another
process (FIX) would write its copy on its own, at emission.

A failed write (a full disk) never fails the OMS's commit: the rows stay pending and are
written at the next commit, up to ``max_pending`` rows, beyond which the oldest are dropped
with an error in the log; the reconciliation then reports them as ``extra`` fills.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import IO, Final

from trading.catalogue import Catalogue
from trading.trading_day import cutoff_ns, trading_date_of
from trading.venues.base import ExecKind, ExecutionReport

log = logging.getLogger(__name__)

COLUMNS: Final = ("exec_id", "order_id", "account_id", "symbol", "side", "qty", "price",
                  "ts_ns", "kind")  # fmt: skip
HEADER: Final = ",".join(COLUMNS) + "\n"
MAX_PENDING: Final = 1_000_000

# (exec_id, order_id, account_id, symbol, side, qty, price, ts_ns, kind): raw integers, cut
# to text only when written (the OMS's thread pays a tuple per report, nothing more).
_Row = tuple[str, int, int, str, str, int, int, int, str]


def dropcopy_dir(home: Path, venue: str = "bbook") -> Path:
    """Where a venue's drop copy lives under the data directory."""
    return home / "venues" / venue / "dropcopy"


def dropcopy_path(directory: Path, day: object) -> Path:
    """The file of one trading day (``day``: a date or its ISO text)."""
    return directory / f"{day}.csv"


class DropCopy:
    """Buffered, per-day CSV appends of a venue's reports (thread-safe: the OMS may commit
    from another thread than the one its venue emits in)."""

    def __init__(
        self, directory: Path, catalogue: Catalogue, *, max_pending: int = MAX_PENDING
    ) -> None:
        self.directory = directory
        self._catalogue = catalogue
        self._max_pending = max_pending
        self._pending: list[_Row] = []
        self._unwritten: list[_Row] = []
        self._lock = threading.Lock()
        self._day: str | None = None
        self._file: IO[str] | None = None
        self._scales: dict[str, tuple[int, int]] = {}
        self._span: tuple[int, int, str] = (0, 0, "")
        self.written = 0

    # -- the venue's side --------------------------------------------------------------------

    def record(
        self, account_id: int, symbol: str, side: str, reports: Sequence[ExecutionReport]
    ) -> None:
        """Hold the reports one order's handling emitted until their batch is stored."""
        if not reports:
            return
        rows = [
            (r.exec_id, r.order_id, account_id, symbol, side, r.last_qty, r.last_price,
             r.ts_ns, r.kind.value)
            for r in reports
        ]  # fmt: skip
        with self._lock:
            self._pending.extend(rows)

    def discard(self) -> None:
        """Forget the reports not yet stored (the venue was reset: they never happened)."""
        with self._lock:
            self._pending.clear()

    # -- the OMS's side --------------------------------------------------------------------------

    def committed(self, exec_ids: Collection[str]) -> None:
        """Append the held reports whose exec ids a stored batch applied; never raises."""
        with self._lock:
            if self._pending:
                keep: list[_Row] = []
                for row in self._pending:
                    (self._unwritten if row[0] in exec_ids else keep).append(row)
                self._pending = keep
            if not self._unwritten:
                return
            try:
                self._write(self._unwritten)
            except Exception as exc:  # the store committed already: never fail the OMS for this
                self._bound()
                log.error("drop copy %s not written (%d rows held): %r",
                          self.directory, len(self._unwritten), exc)  # fmt: skip
                return
            self.written += len(self._unwritten)
            self._unwritten = []

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._day = None

    @property
    def pending(self) -> int:
        """Reports held: waiting for their batch, or for a write that failed."""
        return len(self._pending) + len(self._unwritten)

    # -- internals ---------------------------------------------------------------------------------

    def _bound(self) -> None:
        over = len(self._unwritten) - self._max_pending
        if over > 0:
            log.error("drop copy %s: %d unwritten rows dropped", self.directory, over)
            del self._unwritten[:over]

    def _write(self, rows: list[_Row]) -> None:
        lines: list[str] = []
        day = self._day
        for row in rows:
            row_day = self._day_of(row[7])
            if row_day != day:
                self._flush_lines(day, lines)
                lines = []
                day = row_day
            lines.append(self._line(row))
        self._flush_lines(day, lines)

    def _day_of(self, ts_ns: int) -> str:
        # The day's bounds are kept: a zone conversion per row would cost more than the row.
        start, end, day = self._span
        if not start < ts_ns <= end:
            date = trading_date_of(ts_ns)
            start, end = cutoff_ns(date - dt.timedelta(days=1)), cutoff_ns(date)
            day = date.isoformat()
            self._span = (start, end, day)
        return day

    def _flush_lines(self, day: str | None, lines: list[str]) -> None:
        if day is None or not lines:
            return
        out = self._open(day)
        out.write("".join(lines))
        out.flush()

    def _open(self, day: str) -> IO[str]:
        if self._file is not None and self._day == day:
            return self._file
        if self._file is not None:
            self._file.close()
            self._file = None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = dropcopy_path(self.directory, day)
        fresh = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", encoding="ascii", newline="")
        self._day = day
        if fresh:
            self._file.write(HEADER)
        return self._file

    def _line(self, row: _Row) -> str:
        exec_id, order_id, account_id, symbol, side, qty, price, ts_ns, kind = row
        if kind == ExecKind.FILL.value:
            qty_text = self._text(symbol, qty, 0)
            price_text = self._text(symbol, price, 1)
        else:
            qty_text, price_text = "0", ""
        return (f"{exec_id},{order_id},{account_id},{symbol},{side},{qty_text},{price_text},"
                f"{ts_ns},{kind}\n")  # fmt: skip

    def _text(self, symbol: str, value: int, which: int) -> str:
        scales = self._scales.get(symbol)
        if scales is None:
            inst = self._catalogue.get(symbol)
            scales = self._scales[symbol] = (inst.qty_precision, inst.price_precision)
        places = scales[which]
        if places == 0:
            return str(value)
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), 10**places)
        return f"{sign}{whole}.{frac:0{places}d}"
