"""Orders per second through the FIX adapter to the project's LP simulator on loopback.

``FixVenue.submit`` sends N EUR/USD limit orders (35=D, FIX 4.4) as fast as it takes them;
the LP simulator (its own process) acknowledges and fills each; the adapter parses and
translates both reports and hands them to a handler (in the OMS: its queue). The figure is
N divided by the time from the first submit to the last fill handed over; beside it, the
rate at which ``submit`` alone returned (sending), and the acknowledgements seen.

No OMS and no store: this is the adapter's own rate (the OMS's is ``oms_throughput``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.common import Context, Row, summarize, write_result
from benchmarks.fix_common import LpSession

NAME = "fix_throughput"
WAIT_S = 300.0


def _sizes(quick: bool) -> dict[str, int]:
    return {"orders": 200} if quick else {"orders": 10_000}


def _one_run(n: int) -> dict[str, Any]:
    with LpSession() as lp:
        orders = lp.orders(n)
        lp.arrivals.expect = n
        t0 = time.perf_counter_ns()
        for order in orders:
            lp.venue.submit(order)
        sent = time.perf_counter_ns()
        complete = lp.arrivals.done.wait(WAIT_S)
        t1 = max(lp.arrivals.filled.values(), default=sent)
        return {
            "orders": n,
            "complete": complete,
            "acked": len(lp.arrivals.acked),
            "filled": len(lp.arrivals.filled),
            "other_reports": lp.arrivals.others,
            "orders_per_s": n / ((t1 - t0) / 1e9),
            "submit_per_s": n / ((sent - t0) / 1e9),
        }


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    runs = []
    for r in range(ctx.runs):
        res = _one_run(sizes["orders"])
        ctx.log(f"  run {r + 1}: {res['orders_per_s']:,.0f} orders/s filled round trip, "
                f"{res['submit_per_s']:,.0f}/s sent, {res['filled']}/{res['orders']} filled, "
                f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        runs.append(res)
    figures = {
        "orders_per_s": summarize([r["orders_per_s"] for r in runs]),
        "submit_per_s": summarize([r["submit_per_s"] for r in runs]),
        "all_filled": all(r["complete"] for r in runs),
        "runs": runs,
    }
    data: dict[str, Any] = {
        "params": {**sizes, "runs": ctx.runs, "lp": "trading.venues.fix.lpsim --default fill",
                   "begin_string": "FIX.4.4", "order": "EUR/USD limit 0.01 lot, day"},
        "figures": figures,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    rows = [
        Row(NAME, "-", "orders through the adapter, submit to fill", figures["orders_per_s"],
            "orders/s"),
        Row(NAME, "-", "submit (35=D sent)", figures["submit_per_s"], "orders/s"),
    ]  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
