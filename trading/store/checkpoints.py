"""Balance checkpoints: a ledger account's balance at any time without an index of postings
by account.

Postings are cut by id into spans of ``SPAN_POSTINGS`` (span ``k`` holds the ids
``k*N+1 .. (k+1)*N``). ``posting_spans`` keeps each span's earliest and latest posting time;
``balance_checkpoints`` keeps, at the end of each complete span, the balance of every ledger
account that span touched. Both are written by the batch that writes the postings, in the
same transaction (``record``), and ``bourse ledger verify`` checks them against the postings.

The balance of an account at time ``t`` is then its checkpoint at the last span boundary
``B`` before which every posting is at ``t`` or earlier, plus its postings after ``B`` up to
``t``, read by primary-key ranges over the few spans after ``B`` whose earliest posting is
not after ``t`` (one or two when time moves forward, as the single writer's clock does). So
the point-in-time read costs a span or two of postings at any length of history, and the
writes pay nothing per posting but a span's minimum and maximum, where an index on
(account, time) paid a scattered insert per posting.

``SPAN_POSTINGS`` is part of the stored data: changing it needs a migration that rebuilds
both tables (0009 builds them from the postings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, text

SPAN_POSTINGS = 65_536


def _columns(postings: Sequence[Any]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Posting ids, ledger account ids, amounts and times of a batch's posting rows: dicts,
    or tuples in ``posting_row``'s order (the writer may hand either to the driver)."""
    if isinstance(postings[0], dict):
        return (
            [r["posting_id"] for r in postings], [r["ledger_account_id"] for r in postings],
            [r["amount"] for r in postings], [r["ts_ns"] for r in postings],
        )  # fmt: skip
    return (
        [r[0] for r in postings], [r[2] for r in postings],
        [r[4] for r in postings], [r[5] for r in postings],
    )  # fmt: skip


def record(cursor: Any, named: bool, postings: Sequence[Any]) -> None:
    """Note a batch's postings in their spans, and write the checkpoints of every span the
    batch completes. Runs after the batch's postings and balances are written (it reads
    both back, in the same transaction)."""
    if not postings:
        return
    n = SPAN_POSTINGS
    pids, lids, amounts, times = _columns(postings)
    first, last = min(pids), max(pids)
    spans: dict[int, list[int]] = {}
    if (first - 1) // n == (last - 1) // n:  # the usual case, at C speed
        spans[(first - 1) // n] = [min(times), max(times)]
    else:
        for pid, ts in zip(pids, times, strict=True):
            span = spans.setdefault((pid - 1) // n, [ts, ts])
            span[0], span[1] = min(span[0], ts), max(span[1], ts)

    def ph(name: str) -> str:
        return f":{name}" if named else f"%({name})s"

    least, greatest = ("min", "max") if named else ("LEAST", "GREATEST")
    cursor.executemany(
        "INSERT INTO posting_spans (span_id, min_ts_ns, max_ts_ns) VALUES "
        f"({ph('span_id')}, {ph('lo')}, {ph('hi')}) ON CONFLICT (span_id) DO UPDATE SET "
        f"min_ts_ns = {least}(posting_spans.min_ts_ns, excluded.min_ts_ns), "
        f"max_ts_ns = {greatest}(posting_spans.max_ts_ns, excluded.max_ts_ns)",
        [{"span_id": k, "lo": lo, "hi": hi} for k, (lo, hi) in sorted(spans.items())],
    )
    # Every boundary in [first, last]: the postings after it are all in this batch.
    for boundary in range(-(-first // n) * n, last + 1, n):
        after: dict[int, int] = {}
        for pid, lid, amount in zip(pids, lids, amounts, strict=True):
            if pid > boundary:
                after[lid] = after.get(lid, 0) + amount
        cursor.execute(
            "SELECT b.ledger_account_id, b.amount FROM balances b JOIN "
            "(SELECT DISTINCT ledger_account_id FROM postings "
            f"WHERE posting_id > {ph('lo')} AND posting_id <= {ph('hi')}) t "
            "ON t.ledger_account_id = b.ledger_account_id",
            {"lo": boundary - n, "hi": boundary},
        )
        rows = [
            {"ledger_account_id": lid, "posting_id": boundary, "amount": amount - after.get(lid, 0)}
            for lid, amount in cursor.fetchall()
        ]
        if rows:
            cursor.executemany(
                "INSERT INTO balance_checkpoints (ledger_account_id, posting_id, amount) "
                f"VALUES ({ph('ledger_account_id')}, {ph('posting_id')}, {ph('amount')})",
                rows,
            )


def _ranges(conn: Connection, as_of_ns: int) -> tuple[int, list[tuple[int, int]]]:
    """The last boundary ``B`` whose postings are all at ``as_of_ns`` or earlier and whose
    checkpoints are written, and the posting id ranges after it that may hold postings at
    ``as_of_ns`` or earlier (merged when adjacent)."""
    n = SPAN_POSTINGS
    top = conn.execute(text("SELECT MAX(posting_id) FROM postings")).scalar() or 0
    spans = conn.execute(
        text("SELECT span_id, min_ts_ns, max_ts_ns FROM posting_spans ORDER BY span_id")
    ).all()
    boundary = 0
    latest: int | None = None
    tail: list[tuple[int, int]] = []
    for span_id, lo_ts, hi_ts in spans:
        latest = hi_ts if latest is None else max(latest, hi_ts)
        end = (span_id + 1) * n
        if not tail and latest <= as_of_ns and end <= top:
            boundary = end
            continue
        if lo_ts <= as_of_ns:
            start = span_id * n
            if tail and tail[-1][1] == start:
                tail[-1] = (tail[-1][0], end)
            else:
                tail.append((start, end))
    return boundary, tail


def balances_as_of(conn: Connection, ledger_ids: Iterable[int], as_of_ns: int) -> dict[int, int]:
    """Each ledger account's balance from its postings up to ``as_of_ns`` inclusive."""
    lids = sorted(set(ledger_ids))
    if not lids:
        return {}
    boundary, tail = _ranges(conn, as_of_ns)
    ids = ", ".join(str(int(lid)) for lid in lids)
    out = dict.fromkeys(lids, 0)
    if boundary:
        base = conn.execute(
            text(
                "SELECT c.ledger_account_id, c.amount FROM balance_checkpoints c "
                f"WHERE c.ledger_account_id IN ({ids}) AND c.posting_id = "
                "(SELECT MAX(c2.posting_id) FROM balance_checkpoints c2 "
                " WHERE c2.ledger_account_id = c.ledger_account_id AND c2.posting_id <= :b)"
            ),
            {"b": boundary},
        )
        for lid, amount in base:
            out[int(lid)] = int(amount)
    for lo, hi in tail:
        rows = conn.execute(
            text(
                "SELECT ledger_account_id, SUM(amount) FROM postings "
                "WHERE posting_id > :lo AND posting_id <= :hi AND ts_ns <= :t "
                f"AND ledger_account_id IN ({ids}) GROUP BY ledger_account_id"
            ),
            {"lo": lo, "hi": hi, "t": as_of_ns},
        )
        for lid, total in rows:
            out[int(lid)] += int(total)
    return out
