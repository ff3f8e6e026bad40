"""Profile the OMS's group-commit path: ``python -m benchmarks.profile_oms [--store S]``.

Runs the benchmark workload (setup and warm-up unprofiled) through ``OMS.execute`` in
batches of 200 (``--per-commit``) under cProfile, then prints the functions with the most
own time and the most cumulative time, and the same restricted to ``trading/``.
Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from benchmarks.common import Stores
from benchmarks.workload import GROUP_DEFAULT, build_workload, make_oms


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_oms", description=__doc__)
    p.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--warmup", type=int, default=2_000)
    p.add_argument("--per-commit", type=int, default=GROUP_DEFAULT, help="orders per batch")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--dump", help="also write the raw profile here (for snakeviz, gprof2dot)")
    args = p.parse_args(argv)

    stores = Stores()
    try:
        engine, _dsn = stores.new_engine(args.store)
        wl = build_workload(args.warmup + args.orders)
        oms, _clock = make_oms(engine, wl.catalogue)
        oms.execute(wl.setup)
        for cmds in wl.batches(GROUP_DEFAULT, 0, args.warmup):
            oms.execute(cmds)
        batches = list(wl.batches(args.per_commit, args.warmup, args.warmup + args.orders))
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for cmds in batches:
            oms.execute(cmds)
        prof.disable()
        elapsed = time.perf_counter() - t0
        engine.dispose()
    finally:
        stores.close()
    print(f"{args.orders} orders on {args.store} in {elapsed:.2f} s under cProfile "
          f"({args.orders / elapsed:.0f} orders/s; profiling slows it down)")  # fmt: skip
    if args.dump:
        prof.dump_stats(args.dump)
    for title, sort, restrict in (
        ("own time, everything", "tottime", ()),
        ("cumulative time, trading/", "cumulative", ("trading/",)),
        ("own time, trading/", "tottime", ("trading/",)),
    ):
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).sort_stats(sort)
        stats.print_stats(*restrict, args.top)
        print(f"\n=== {title} ===")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20_000])


if __name__ == "__main__":
    main()
