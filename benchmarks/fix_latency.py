"""Submit-to-ack latency through the FIX adapter at a steady 500 orders/s.

Orders go to ``FixVenue.submit`` on a fixed schedule (500 a second, EUR/USD limits, FIX 4.4)
to the project's LP simulator on loopback (its own process); an order's latency runs from
its due time on the schedule (so a sender that fell behind counts: no coordinated omission)
to the moment the adapter hands its acknowledgement (35=8 ExecType New, parsed and
translated) to the handler. Figures are medians over runs of each run's percentiles.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.common import Context, Row, percentile, summarize, write_result
from benchmarks.fix_common import LpSession

NAME = "fix_latency"
RATE = 500
QUANTILES = ("p50", "p90", "p99", "p99.9", "max")


def _sizes(quick: bool) -> dict[str, float]:
    return {"seconds": 1.0, "warmup_s": 0.2} if quick else {"seconds": 10.0, "warmup_s": 1.0}


def _one_run(seconds: float, warmup_s: float) -> dict[str, Any]:
    with LpSession() as lp:
        n = int((seconds + warmup_s) * RATE)
        warm = int(warmup_s * RATE)
        orders = lp.orders(n)
        lp.arrivals.expect = n
        step_ns = 1_000_000_000 // RATE
        start = time.perf_counter_ns() + 1_000_000
        due: dict[int, int] = {}
        for i, order in enumerate(orders):
            t = start + i * step_ns
            while (now := time.perf_counter_ns()) < t:
                if t - now > 200_000:
                    time.sleep((t - now - 100_000) / 1e9)
            due[order.order_id] = t
            lp.venue.submit(order)
        lp.arrivals.done.wait(60)
        acked = lp.arrivals.acked
        lat = sorted(
            (acked[o.order_id] - due[o.order_id]) / 1e6
            for o in orders[warm:]
            if o.order_id in acked
        )
        return {
            "orders": n - warm,
            "acked": len(lat),
            "latency_ms": {
                "p50": percentile(lat, 50), "p90": percentile(lat, 90),
                "p99": percentile(lat, 99), "p99.9": percentile(lat, 99.9),
                "max": lat[-1] if lat else 0.0,
            },
        }  # fmt: skip


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    runs = []
    for r in range(ctx.runs):
        res = _one_run(sizes["seconds"], sizes["warmup_s"])
        lat = res["latency_ms"]
        ctx.log(f"  run {r + 1}: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, max "
                f"{lat['max']:.2f} ms, {res['acked']}/{res['orders']} acked, "
                f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        runs.append(res)
    figures = {
        "latency_ms": {q: summarize([r["latency_ms"][q] for r in runs], 3) for q in QUANTILES},
        "all_acked": all(r["acked"] == r["orders"] for r in runs),
        "runs": runs,
    }
    data: dict[str, Any] = {
        "params": {**sizes, "orders_per_s": RATE, "runs": ctx.runs,
                   "lp": "trading.venues.fix.lpsim --default fill", "begin_string": "FIX.4.4"},
        "figures": figures,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    rows = [
        Row(NAME, "-", f"submit-to-ack {q} at {RATE}/s", figures["latency_ms"][q], "ms")
        for q in ("p50", "p99", "p99.9", "max")
    ]
    write_result(ctx, NAME, data)
    return data, rows
