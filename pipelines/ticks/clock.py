"""A feed's clock on a replay: which event times may become it, decided by the ticks after.

A vendor file carries no receive time, so a stamp hours ahead of its neighbours (a vendor
clock error) cannot be judged against the wire. Taken as the feed's clock, it would make
every later tick look out of order. So on a replay the clock moves forward only where the
following ticks agree, the way a price jump is confirmed (``filters``):

- a tick at or after the clock ``C`` whose next ``confirm`` timed ticks hold some stamps in
  ``[C, t)`` (*contradicting*: the feed goes on before it), and at least as many as at or
  after ``t`` (*supporting*), is a ``future`` reject, and the clock stays. Stamps before
  ``C`` are bad ticks of their own and count neither way. A run of bad stamps up to about
  half of ``confirm`` long is rejected whole; a true jump, followed by ticks after it, is
  accepted even when one of those is itself bad.
- a tick before the clock is ``out_of_order`` (``filters``): one early stamp never moves the
  clock back.
- the last ticks of a feed have too few ticks after them to confirm a jump: one that most
  of the few that follow do not support is a ``future`` reject when it lies further past
  the clock than an hour and ``START_GAP_FACTOR`` times the spacing of the ticks before it.
- the first tick of a feed has no clock to compare with. It is ``out_of_order`` when most
  ticks after it sit far later than it, beyond ``START_GAP_FACTOR`` times their own spacing
  and at least ``START_GAP_FLOOR_NS`` (an hour: an early stamp at the start of a file; a
  smaller one cannot be told from a quiet open); the next tick is then the first.

*Timed* ticks are those that passed the price checks (a row with no usable price is judged
on those, not on its stamp). A tick's decision needs ``confirm`` timed ticks after it: near
the end of a batch, a tick that the ticks still to come could turn waits for them (it and
every row after it stay in the feed's state), so a decision never depends on where a batch
ended. Only a tick with at least as many earlier stamps among the next ``confirm`` as later
ones, a feed's first and those near the end of a batch can be turned down; the others are
decided with array operations, and the few that can are walked in Python.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import polars as pl

# Marks of a decided row (0: none).
JUMP = 1  # an unconfirmed forward jump: rejected as ``future``
EARLY = 2  # an early stamp at the start of a feed: rejected as ``out_of_order``

START_GAP_FLOOR_NS = 3_600 * 1_000_000_000
START_GAP_FACTOR = 20


@dataclass(frozen=True, slots=True)
class Decision:
    decided: int  # rows of the input decided: a prefix; the rest wait for more ticks
    marks: list[tuple[int, int]]  # (row, JUMP or EARLY) among the decided rows
    clock: int | None  # the clock after the decided rows


def decide(
    ts: pl.Series,
    timed: pl.Series,
    clock: int | None,
    *,
    confirm: int,
    final: bool,
) -> Decision:
    """Decide the rows of one feed (``ts`` event times without nulls, ``timed`` booleans)
    against the clock ``clock`` (None before the feed's first tick). ``final``: no rows
    will follow.
    """
    rows = timed.arg_true()
    n = rows.len()
    if n == 0:
        return Decision(ts.len(), [], clock)
    t = ts.filter(timed)
    walk: set[int] = set()
    descents = (t.shift(-1) < t).arg_true()
    if descents.len():
        # Only a row with an earlier successor (within ``confirm`` rows before a descent)
        # and with at least as many earlier successors as later ones can be turned down;
        # the others are accepted (or out of order) like any other row. Counted on the
        # descents' neighbourhoods alone, in one query.
        offsets = pl.Series(range(-confirm + 1, confirm + 1), dtype=pl.Int64)
        at = (
            pl.DataFrame({"d": descents.cast(pl.Int64)})
            .select((pl.col("d") + offsets.implode()).explode().unique().sort())
            .filter(pl.col("d").is_between(0, n - 1))
            .get_column("d")
        )
        pos, val = pl.col("pos"), pl.col("t")
        nexts = [(pos.shift(-s) == pos + s).fill_null(False) for s in range(1, confirm + 1)]
        earlier = pl.sum_horizontal(
            [(val.shift(-s) < val).fill_null(False) & nxt for s, nxt in enumerate(nexts, 1)]
        )
        seen = pl.sum_horizontal(nexts)
        doubt = pl.DataFrame({"pos": at, "t": t.gather(at)}).filter(
            (earlier > 0) & (earlier * 2 >= seen)
        )
        walk.update(doubt.get_column("pos").to_list())
    walk.update(range(max(0, n - confirm), n))  # waiting for ticks, or the feed's last
    if clock is None:
        walk.add(0)
    if not walk:
        top = t.max()
        assert isinstance(top, int)
        return Decision(ts.len(), [], top if clock is None else max(clock, top))
    idx = sorted(walk)
    # The stamps the walk reads: the walked rows, the rows after them, the rows before.
    near = sorted({j for i in idx for j in range(max(0, i - 1), min(n, i + 1 + confirm))})
    times = dict(zip(near, t.gather(near).to_list(), strict=True))
    positions = rows.gather(idx).to_list()
    at_row = dict(zip(idx, positions, strict=True))

    def stamp(j: int) -> int:  # a forced row's window may reach past ``near``
        return times[j] if j in times else int(t[j])

    marks: list[tuple[int, int]] = []
    last = -1  # the last row walked; rows between walked ones only move the clock forward
    k, forced = 0, -1  # forced: a row to walk because the feed still has no clock
    while True:
        if forced > last and (k >= len(idx) or forced <= idx[k]):
            i = forced
            k += int(k < len(idx) and idx[k] == i)
        elif k < len(idx):
            i, k = idx[k], k + 1
        else:
            break
        if i - 1 > last:
            # Rows between walked ones are accepted or out of order: the clock is then the
            # greatest of them, if it is greater.
            top = t.slice(last + 1, i - 1 - last).max()
            assert isinstance(top, int)
            clock = top if clock is None or top > clock else clock
        last = i
        here = stamp(i)
        row = at_row[i] if i in at_row else int(rows[i])
        if clock is not None and here < clock:
            continue  # out of order; the clock stays
        after = [stamp(j) for j in range(i + 1, min(n, i + 1 + confirm))]
        unseen = 0 if final else confirm - len(after)
        if clock is None:
            if unseen:
                return Decision(row, marks, clock)
            if _early(here, after):
                marks.append((row, EARLY))
                forced = i + 1 if i + 1 < n else -1
                continue
        support = sum(1 for x in after if x >= here)
        against = sum(1 for x in after if x < here and (clock is None or x >= clock))
        if final and clock is not None and 2 * support <= len(after) < confirm:
            # The feed's last ticks: too few follow to confirm a jump, so a far one (by the
            # rule for a feed's first tick, looking back) is not taken as the clock.
            before = [stamp(j) for j in range(max(0, i - confirm), i)]
            if _far(clock, here, before):
                marks.append((row, JUMP))
                continue
        if against and against >= support + unseen:
            marks.append((row, JUMP))
            if clock is None and i + 1 < n:
                forced = i + 1
        elif against + unseen < support or against + unseen == 0:
            clock = here
        else:
            return Decision(row, marks, clock)
    if last < n - 1:
        top = t.slice(last + 1).max()
        assert isinstance(top, int)
        clock = top if clock is None or top > clock else clock
    return Decision(ts.len(), marks, clock)


def _far(clock: int, here: int, before: list[int]) -> bool:
    """Whether ``here`` is further past the clock than an hour and than
    ``START_GAP_FACTOR`` times the spacing of the ticks ``before`` it."""
    gaps = sorted(abs(b - a) for a, b in itertools.pairwise(before))
    spacing = gaps[len(gaps) // 2] if gaps else 0
    return here - clock > max(START_GAP_FLOOR_NS, START_GAP_FACTOR * spacing)


def _early(first: int, after: list[int]) -> bool:
    """Whether most ticks after a feed's first sit far later than it: beyond an hour, and
    beyond ``START_GAP_FACTOR`` times their own median spacing. (A real feed often opens
    with one tick and then a quiet minute or two, so a short gap proves nothing.)"""
    if not after:
        return False
    gaps = sorted(abs(b - a) for a, b in itertools.pairwise(after))
    spacing = gaps[len(gaps) // 2] if gaps else 0
    far = first + max(START_GAP_FLOOR_NS, START_GAP_FACTOR * spacing)
    return 2 * sum(1 for x in after if x > far) > len(after)
