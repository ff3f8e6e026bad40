"""The adapter's exceptions file: LP messages it could not apply, kept for the desk.

``HOME/venues/fix/<lp>/exceptions.csv``, one header line, then one row per message:

    ts_ns,reason,msg_type,seq_num,cl_ord_id,exec_id,text,raw

``raw`` is the whole message with SOH written as ``|``. A report for an unknown ClOrdID, a
trade bust or correction, a restatement of terms, a reject of a message the adapter no longer
remembers sending: each is recorded here (flushed at once), never dropped. Every message in
and out is also in quickfix's FileLog (``HOME/venues/fix/<lp>/log``), and the reports the OMS
applied in the venue's drop copy (``trading.venues.dropcopy``).
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Final

from trading.venues.fix.messages import Inbound

COLUMNS: Final = ("ts_ns", "reason", "msg_type", "seq_num", "cl_ord_id", "exec_id", "text",
                  "raw")  # fmt: skip


class Exceptions:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        if fresh:
            self._csv.writerow(COLUMNS)
            self._file.flush()
        self.count = 0

    def record(self, ts_ns: int, reason: str, m: Inbound) -> None:
        with self._lock:
            self._csv.writerow((ts_ns, reason, m.msg_type, m.seq_num, m.cl_ord_id or "",
                                m.exec_id or "", m.text or "", m.raw))  # fmt: skip
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_exceptions(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
