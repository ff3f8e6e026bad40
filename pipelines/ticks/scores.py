"""Spike and fat-finger scoring of the bad-tick filters (``filters.screen``).

The statistical check compares a quote's mid (or a trade's price) with the median of the
previous block of ``block_rows`` clean values, and flags it when it is further away than
``spike_mads`` robust deviations (1.4826 × the block's median absolute deviation) and than
a floor in basis points. A flagged value is a bad tick unless most of the next
``confirm_ticks`` values confirm it: when the market really jumps, the ticks after the jump
stay near the new level and the jump is accepted, even when one of them is itself a bad
tick. A flagged value near the end of a batch waits for
the next batch (it and the rows after it are held in the state as ``pending``), so a
decision never depends on where a batch happened to end. Block medians instead of a rolling
median keep the pass at a few tens of nanoseconds per tick.

``_score`` computes the scores of a batch's clean values in Python for a small batch
(``_score_small``) and as one Polars query plan otherwise; both give the same scores.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pipelines.ticks.checks import _bounds, _by_feed, _one
from pipelines.ticks.config import FilterConfig, Thresholds


@dataclass(frozen=True, slots=True)
class _Scoring:
    """What one feed's outlier scores depend on besides its clean values."""

    tail: tuple[int, ...]
    th: Thresholds
    tick_int: int


def _score(clean: pl.DataFrame, feeds: Sequence[_Scoring], cfg: FilterConfig) -> pl.DataFrame:
    """The clean rows with their outlier scores: ``_f``, ``_i``, ``_v``, ``_thr``, ``_cand``,
    ``_seen``, ``_agree``, in the order of ``clean`` (by feed ``_f``, then row ``_i``).

    ``_thr``: how far a value may be from its reference (an integer); ``_cand``: further
    from the previous block's median than that; for a candidate, ``_seen``: how many of the
    next ``confirm_ticks`` clean values of its feed exist, and ``_agree``: how many of those
    stay near it (both 0 for the other values: only a candidate's confirmations matter).
    Each feed's values follow its ``tail``.
    """
    if clean.height + sum(len(f.tail) for f in feeds) <= _SMALL:
        return _score_small(clean, feeds, cfg)
    b, m = cfg.block_rows, cfg.confirm_ticks
    multi = len(feeds) > 1
    head = pl.DataFrame(
        {"_f": [k for k, f in enumerate(feeds) for _ in f.tail],
         "_i": [-1] * sum(len(f.tail) for f in feeds),
         "_v": [x for f in feeds for x in f.tail]},
        schema={"_f": pl.UInt32, "_i": pl.Int64, "_v": pl.Int64},
    ).with_columns(_q=pl.lit(True))  # fmt: skip
    # Each feed's tail, then its clean values: slices of the two frames, in feed order.
    clean_at, head_at = _bounds(clean["_f"], len(feeds)), _bounds(head["_f"], len(feeds))
    parts = []
    for k in range(len(feeds)):
        parts.append(head.slice(head_at[k], head_at[k + 1] - head_at[k]))
        parts.append(clean.slice(clean_at[k], clean_at[k + 1] - clean_at[k]))
    # A feed's j-th value (tail included) is in block (j + b - len(tail)) // b: the tail
    # fills the end of block 0; ``_base`` is b - len(tail) less the row the feed starts at.
    bases = []
    for k, f in enumerate(feeds):
        bases.append(b - len(f.tail) - (head_at[k] + clean_at[k]))
    base = _per_feed(bases)
    values = (
        pl.concat([p for p in parts if not p.is_empty()] or [head])
        .lazy()
        .with_row_index("_j")
        .with_columns(_block=(pl.col("_j").cast(pl.Int64) + base) // b)
    )
    # Blocks are runs of rows (a feed's values are consecutive), so a block's statistics
    # are computed per run and spread back over it, and the previous block's are those of
    # the row before the run: no join, no sort.
    new = pl.col("_block") != pl.col("_block").shift(1)
    if multi:
        new = new | (pl.col("_f") != pl.col("_f").shift(1))
    values = values.with_columns(_g=new.fill_null(True).cum_sum())
    # Twice the median is an integer; so is twice the median of |2v - that|, i.e. 4 × MAD.
    med = (pl.col("_v").median() * 2).cast(pl.Int64)
    values = values.with_columns(_med=med.over("_g")).with_columns(
        _mad=((pl.col("_v") * 2 - pl.col("_med")).abs().median() * 2).cast(pl.Int64).over("_g")
    )
    first = pl.col("_g") != pl.col("_g").shift(1)
    same_feed = (pl.col("_f") == pl.col("_f").shift(1)) if multi else pl.lit(True)

    def prev_of(c: str) -> pl.Expr:  # the previous block's; a feed's first block its own
        own = pl.col(c)
        at_start = pl.when(same_feed.fill_null(False)).then(pl.coalesce(own.shift(1), own))
        return pl.when(first.fill_null(True)).then(at_start.otherwise(own)).forward_fill()

    values = values.with_columns(_ref=prev_of("_med"), _pmad=prev_of("_mad")).with_columns(
        _mad=pl.col("_pmad")
    )
    v = pl.col("_v")
    mads = _per_feed([f.th.spike_mads for f in feeds])
    spike_floor = _per_feed([f.th.spike_floor_bps for f in feeds])
    fat_finger = _per_feed([f.th.fat_finger_bps for f in feeds])
    min_thr = _per_feed([4 * f.tick_int for f in feeds])
    floor_bps = pl.when(pl.col("_q")).then(spike_floor).otherwise(fat_finger)
    everything = (
        values.with_columns(
            _thr=pl.max_horizontal(
                pl.col("_mad") * (_MAD_TO_SIGMA * mads) // (4 * _SIGMA_SCALE),
                pl.col("_ref") * floor_bps // 20_000,
                min_thr,
            )
        )
        .with_columns(_cand=(v * 2 - pl.col("_ref")).abs() > pl.col("_thr") * 2)
        .select("_f", "_i", "_v", "_thr", "_cand")
        .collect(engine="in-memory")
    )
    scored = everything.filter(pl.col("_i") >= 0)

    def zeros() -> pl.Series:  # a new one each time: ``scatter`` writes in place
        return pl.repeat(0, scored.height, dtype=pl.Int64, eager=True)

    is_cand = scored.get_column("_cand")
    if not is_cand.any():  # the usual batch: no value to confirm
        return scored.with_columns(_seen=zeros(), _agree=zeros())
    # Candidates are rare: their confirmations are counted on them alone, from the values
    # (tails included) that follow each within its feed.
    at = (everything.get_column("_cand") & (everything.get_column("_i") >= 0)).arg_true()
    fs, vs = everything.get_column("_f"), everything.get_column("_v")
    last = everything.height - 1
    f0, v0 = fs.gather(at), vs.gather(at)
    thr = everything.get_column("_thr").gather(at)
    seen = pl.repeat(0, at.len(), dtype=pl.Int64, eager=True)
    agree = seen
    for s in range(1, m + 1):
        j = (at.cast(pl.Int64) + s).clip(upper_bound=last)
        there = (fs.gather(j) == f0) & (at.cast(pl.Int64) + s <= last)
        seen = seen + there.cast(pl.Int64)
        agree = agree + (there & ((vs.gather(j) - v0).abs() <= thr)).cast(pl.Int64)
    rows = is_cand.arg_true()
    return scored.with_columns(
        _seen=zeros().scatter(rows, seen), _agree=zeros().scatter(rows, agree)
    )


def _per_feed(values: list[int]) -> pl.Expr:
    """A literal when every feed has the same value, else the row's feed's value."""
    one = _one(values)
    return pl.lit(one, pl.Int64) if one is not None else _by_feed(values)


# 1.4826 × MAD estimates a normal sigma; kept as a ratio of integers so that the scores are
# exact integers on both paths below.
_MAD_TO_SIGMA, _SIGMA_SCALE = 14_826, 10_000


def _twice_median(xs: list[int]) -> int:
    ordered = sorted(xs)
    mid = len(ordered) // 2
    return 2 * ordered[mid] if len(ordered) % 2 else ordered[mid - 1] + ordered[mid]


# Up to this many values (all feeds' clean values and tails), the scores are computed in
# Python: a live batch of a few ticks then costs microseconds instead of a query plan's
# fixed cost. Python takes about 0.4 us a value and the plan 3-6 ms whatever the size up
# to some ten thousand values, so they cross near 10,000 on one feed and further on ten
# (measured on one feed of 1,000 to 8,000 rows and ten feeds of 10 to 800 rows each); a
# batch of many spike candidates costs Python more, hence some margin. The two paths give
# the same scores (``tests/pipelines/test_filters.py`` compares them).
_SMALL = 8_192
# The scores' columns, filled feed after feed: thr, cand, seen, agree.
_Scores = tuple[list[int], list[bool], list[int], list[int]]


def _score_small(clean: pl.DataFrame, feeds: Sequence[_Scoring], cfg: FilterConfig) -> pl.DataFrame:
    fs, idx = clean["_f"].to_list(), clean["_i"].to_list()
    vals, quote = clean["_v"].to_list(), clean["_q"].to_list()
    cols: _Scores = ([], [], [], [])
    lo = 0
    for k, feed in enumerate(feeds):
        hi = lo
        while hi < len(fs) and fs[hi] == k:
            hi += 1
        _score_feed(vals[lo:hi], quote[lo:hi], feed, cfg, cols)
        lo = hi
    thr, cand, seen, agree = cols
    return pl.DataFrame(
        {"_f": fs, "_i": idx, "_v": vals, "_thr": thr, "_cand": cand, "_seen": seen,
         "_agree": agree},
        schema={"_f": pl.UInt32, "_i": pl.Int64, "_v": pl.Int64, "_thr": pl.Int64,
                "_cand": pl.Boolean, "_seen": pl.Int64, "_agree": pl.Int64},
    )  # fmt: skip


def _score_feed(
    vals: list[int],
    quote: list[bool],
    feed: _Scoring,
    cfg: FilterConfig,
    out: _Scores,
) -> None:
    """One feed's scores, appended to ``out`` (thr, cand, seen, agree).

    The tail fills block 0 (it is at most ``block_rows`` long) and clean value ``pos`` is
    in block ``pos // b + 1``, so the values go block by block, each against the block
    before it (the first against itself when there is no tail); a block's thresholds are
    one per kind.
    """
    th, tail = feed.th, feed.tail
    b, m = cfg.block_rows, cfg.confirm_ticks
    out_thr, out_cand, out_seen, out_agree = out
    values = [*tail, *vals]
    n_tail = len(tail)
    k_mad = _MAD_TO_SIGMA * th.spike_mads
    prev = _block_stats(list(tail)) if tail else None
    for lo in range(0, len(vals), b):
        chunk, kinds = vals[lo : lo + b], quote[lo : lo + b]
        own = _block_stats(chunk)
        ref, mad = prev or own
        prev = own
        spread = mad * k_mad // (4 * _SIGMA_SCALE)
        thr_q = max(spread, ref * th.spike_floor_bps // 20_000, 4 * feed.tick_int)
        thr_t = max(spread, ref * th.fat_finger_bps // 20_000, 4 * feed.tick_int)
        thrs = [thr_q if q else thr_t for q in kinds]
        cands = [abs(2 * v - ref) > 2 * t for v, t in zip(chunk, thrs, strict=True)]
        # m values follow each one but the last m; only a candidate's confirmations matter.
        seen, agree = [0] * len(chunk), [0] * len(chunk)
        for i in itertools.compress(range(len(chunk)), cands):
            j, t = n_tail + lo + i, thrs[i]
            nxt = values[j + 1 : j + 1 + m]
            seen[i] = len(nxt)
            agree[i] = sum(1 for x in nxt if abs(x - values[j]) <= t)
        out_thr += thrs
        out_cand += cands
        out_seen += seen
        out_agree += agree


def _block_stats(xs: list[int]) -> tuple[int, int]:
    """Twice the median of ``xs``, and twice the median of |2x - that| (4 × MAD)."""
    med2 = _twice_median(xs)
    return med2, _twice_median([abs(2 * x - med2) for x in xs])
