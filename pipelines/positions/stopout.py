"""Margin calls and stop-outs of one account: the decisions, over plain state.

``evaluate`` runs whenever an account's figures move (a fill, a cash event, a quote). It
raises a margin call alert once per crossing of the call level, and under the stop-out
level it runs a stop-out *episode*: the house closes the open position with the largest
loss, waits for that close's outcome (``on_house_order``), re-checks the level, and goes on
until the level is back above the stop-out level. One close at a time: a second close sent
before the first's fill is known could close more than needed.

The state (``StopOut``) is small and picklable, for Bytewax snapshots. A close's command id
is made of the account, the episode and the step (``stopout-7-1-2``), so a flow resumed from
an older snapshot decides the same close under the same id, which the OMS answers from its
command log instead of closing twice; and the close's own ``order.*`` events (their
``house_reason`` starts with ``stop-out <command id>:``) bring a resumed flow's state
forward, so it does not send a close it already sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from pipelines.positions.config import MarginLevels
from pipelines.positions.records import (
    AccountRow,
    Alert,
    AlertKind,
    CloseOrder,
    MarginState,
    PositionRow,
)
from trading.catalogue import Catalogue, default_catalogue
from trading.instrument import AccountType
from trading.money import format_minor

TERMINAL: Final = frozenset(
    {"order.filled", "order.canceled", "order.rejected", "order.denied", "order.expired"}
)
_REASON_RE: Final = re.compile(r"^stop-out (stopout-(\d+)-(\d+)-(\d+)):")
_CENTS: Final = Decimal("0.01")


@dataclass(slots=True)
class StopOut:
    """One account's margin call and stop-out state."""

    episodes: int = 0  # stop-outs started so far; the current one's number while active
    active: bool = False
    step: int = 0  # the current episode's close number, from 1
    pending: str | None = None  # command id of the close in flight
    pending_symbol: str | None = None
    pending_since_ns: int = 0
    failed: frozenset[str] = field(default_factory=frozenset)  # closes that failed this episode
    called: bool = False  # a margin call is raised for the current crossing
    stuck: bool = False  # the STOP_OUT_STUCK alert was raised in this episode


def command_id(account_id: int, episode: int, step: int) -> str:
    return f"stopout-{account_id}-{episode}-{step}"


def parse_reason(house_reason: object) -> tuple[str, int, int, int] | None:
    """(command id, account, episode, step) of a stop-out close's ``house_reason``; None for
    any other house order (a desk close)."""
    if not isinstance(house_reason, str):
        return None
    m = _REASON_RE.match(house_reason)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def effective_level(acct: AccountRow) -> Decimal | None:
    """The margin level that calls and stop-outs look at: None on a cash account or when no
    margin is used (nothing to call)."""
    if acct.account_type == AccountType.CASH.value or acct.used_margin <= 0:
        return None
    return acct.margin_level


def margin_state(level: Decimal | None, levels: MarginLevels, st: StopOut) -> MarginState:
    """The ``MarginState`` an ``AccountRow`` shows: STOP_OUT while an episode runs (or the
    level is under stop-out), MARGIN_CALL at or under the call level, else OK. ``level`` is
    ``effective_level`` (None on a cash account); call it after ``evaluate`` so that the row
    shows the state the evaluation left."""
    if st.active or (level is not None and level <= levels.stop_out):
        return MarginState.STOP_OUT
    if level is not None and level <= levels.call:
        return MarginState.MARGIN_CALL
    return MarginState.OK


def evaluate(
    acct: AccountRow,
    positions: Sequence[PositionRow],
    levels: MarginLevels,
    st: StopOut,
    ts_ns: int,
    timeout_ns: int,
    catalogue: Catalogue | None = None,
) -> tuple[list[Alert], list[CloseOrder]]:
    """Alerts and at most one close for the account now; updates ``st`` in place."""
    level = effective_level(acct)
    alerts: list[Alert] = []
    _margin_call(acct, level, levels, st, ts_ns, alerts)
    if st.pending is not None and ts_ns - st.pending_since_ns >= timeout_ns:
        alerts.append(_timed_out(acct, st, ts_ns))
    under = level is not None and level <= levels.stop_out
    if not st.active:
        if not under:
            return alerts, []
        st.episodes += 1
        st.active, st.step, st.failed, st.stuck = True, 1, frozenset(), False
        st.pending, st.pending_symbol = None, None
        message = f"stop-out {st.episodes} started: {_figures(acct, level, levels)}"
        alerts.append(_alert(AlertKind.STOP_OUT_STARTED, acct, level, ts_ns, message))
    if st.pending is not None:
        return alerts, []  # one at a time: the level is re-checked once this one is done
    if not under:
        # ``step`` stays: a late event of this episode is then older than the state.
        st.active, st.failed, st.stuck = False, frozenset(), False
        message = f"stop-out {st.episodes} ended: {_figures(acct, level, levels)}"
        alerts.append(_alert(AlertKind.STOP_OUT_ENDED, acct, level, ts_ns, message))
        return alerts, []
    assert level is not None
    pos = _largest_loss(positions, st.failed)
    if pos is None:
        if not st.stuck:
            st.stuck = True
            alerts.append(_alert(AlertKind.STOP_OUT_STUCK, acct, level, ts_ns,
                                 f"stop-out {st.episodes}: nothing left that can be closed; "
                                 f"{_figures(acct, level, levels)}",
                                 failed=",".join(sorted(st.failed))))  # fmt: skip
        return alerts, []
    cid = command_id(acct.account_id, st.episodes, st.step)
    reason = f"stop-out {cid}: {_figures(acct, level, levels)}; close {_describe(pos, catalogue)}"
    st.pending, st.pending_symbol, st.pending_since_ns = cid, pos.symbol, ts_ns
    alerts.append(_alert(AlertKind.STOP_OUT_CLOSE_SENT, acct, level, ts_ns, reason,
                         symbol=pos.symbol, command_id=cid))  # fmt: skip
    return alerts, [CloseOrder(cid, acct.account_id, pos.symbol, reason)]


def on_house_order(
    st: StopOut, account_id: int, event_type: str, body: Mapping[str, object], ts_ns: int
) -> list[Alert]:
    """Follow the account's own stop-out closes through their ``order.*`` events.

    Events of an earlier episode or step (a close given up after its timeout) are ignored:
    their fills reach the positions anyway. An event of the current or a later step while
    nothing is pending (a flow resumed from a snapshot older than the send) makes that close
    the pending one, or ends it when the event is terminal.
    """
    if body.get("initiator") != "house":
        return []
    parsed = parse_reason(body.get("house_reason"))
    if parsed is None:
        return []  # a desk close, not ours
    cid, acct, episode, step = parsed
    if acct != account_id or (episode, step) < (st.episodes, st.step):
        return []
    if episode == st.episodes and not st.active:
        return []  # a late word on a close of the episode that ended
    if cid != st.pending:
        if episode > st.episodes:
            # The snapshot predates the episode: the event proves it started.
            st.episodes, st.active, st.failed, st.stuck = episode, True, frozenset(), False
        st.step, st.pending, st.pending_since_ns = step, cid, ts_ns
        st.pending_symbol = _text(body.get("symbol")) or None
    if event_type not in TERMINAL:
        return []
    symbol = st.pending_symbol or _text(body.get("symbol"))
    st.step, st.pending, st.pending_symbol, st.pending_since_ns = step + 1, None, None, 0
    filled = body.get("filled_qty", 0)
    if isinstance(filled, int) and filled > 0:
        return []  # a fill, whole or partial: the next evaluation re-checks the level
    st.failed = st.failed | {symbol}
    code, why = _text(body.get("code")), _text(body.get("reason"))
    message = f"stop-out close {cid} of {symbol} {event_type.removeprefix('order.')} unfilled"
    if why:
        message += f": {why}"
    return [
        Alert(
            AlertKind.STOP_OUT_CLOSE_FAILED, ts_ns, message, account_id=account_id,
            symbol=symbol, details={"command_id": cid, "event": event_type, "code": code,
                                    "reason": why},
        )
    ]  # fmt: skip


def on_close_refused(
    st: StopOut, account_id: int, cid: str, reason: str, ts_ns: int
) -> list[Alert]:
    """The OMS refused the pending close as a command (an error reply, no order event: the
    position was already flat, the account unknown): the close failed, as if denied.

    Not for ``duplicate_command_id`` nor a replayed answer: the id was sent before (a resumed
    flow deciding again) and that close's own events will tell its outcome.
    """
    if cid != st.pending:
        return []
    body = {"initiator": "house", "house_reason": f"stop-out {cid}:", "symbol": st.pending_symbol,
            "filled_qty": 0, "reason": reason, "code": "refused"}  # fmt: skip
    return on_house_order(st, account_id, "order.denied", body, ts_ns)


# --- internals --------------------------------------------------------------------------------


def _margin_call(
    acct: AccountRow,
    level: Decimal | None,
    levels: MarginLevels,
    st: StopOut,
    ts_ns: int,
    alerts: list[Alert],
) -> None:
    if level is not None and level <= levels.call:
        if not st.called:
            st.called = True
            message = f"margin call: {_figures(acct, level, levels, call=True)}"
            alerts.append(_alert(AlertKind.MARGIN_CALL, acct, level, ts_ns, message))
    elif st.called:
        st.called = False
        what = (
            "no margin used" if level is None else f"margin level {_pct(level)}% > {levels.call}%"
        )
        alerts.append(_alert(AlertKind.MARGIN_CALL_CLEARED, acct, level, ts_ns,
                             f"margin call cleared: {what}"))  # fmt: skip


def _timed_out(acct: AccountRow, st: StopOut, ts_ns: int) -> Alert:
    cid, symbol = st.pending, st.pending_symbol
    age_s = Decimal(ts_ns - st.pending_since_ns).scaleb(-9).quantize(Decimal("0.001"))
    # The symbol stays closable: the close may have been lost on the way, not refused.
    st.step, st.pending, st.pending_symbol, st.pending_since_ns = st.step + 1, None, None, 0
    return Alert(
        AlertKind.STOP_OUT_CLOSE_FAILED, ts_ns,
        f"stop-out close {cid} of {symbol}: no outcome after {age_s} s, given up",
        account_id=acct.account_id, symbol=symbol,
        details={"command_id": str(cid), "code": "timeout", "age_s": str(age_s)},
    )  # fmt: skip


def _largest_loss(positions: Sequence[PositionRow], failed: frozenset[str]) -> PositionRow | None:
    candidates = [
        p for p in positions if p.net_qty and p.unrealized is not None and p.symbol not in failed
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p.unrealized, p.symbol))


def _pct(level: Decimal) -> str:
    return str(level.quantize(_CENTS, rounding=ROUND_HALF_EVEN))


def _figures(
    acct: AccountRow, level: Decimal | None, levels: MarginLevels, *, call: bool = False
) -> str:
    ccy = acct.currency
    money = (f"equity {format_minor(acct.equity, ccy)} {ccy}, "
             f"used margin {format_minor(acct.used_margin, ccy)} {ccy}")  # fmt: skip
    if level is None:
        return f"no margin used ({money})"
    threshold = levels.call if call else levels.stop_out
    rel = "<=" if level <= threshold else ">"
    return f"margin level {_pct(level)}% {rel} {threshold}% ({money})"


def _describe(pos: PositionRow, catalogue: Catalogue | None) -> str:
    inst = (catalogue or default_catalogue()).get(pos.symbol)
    lots = inst.qty_from_int(abs(pos.net_qty))
    side, at = ("long", "bid") if pos.net_qty > 0 else ("short", "ask")
    unit = "lot" if lots == 1 else "lots"
    mark = "no quote" if pos.mark is None else f"{at} {inst.price_from_int(pos.mark)}"
    return f"{pos.symbol} {side} {lots} {unit} at {mark}"


def _alert(
    kind: AlertKind,
    acct: AccountRow,
    level: Decimal | None,
    ts_ns: int,
    message: str,
    *,
    symbol: str | None = None,
    **details: str,
) -> Alert:
    figures = {"equity": format_minor(acct.equity, acct.currency),
               "used_margin": format_minor(acct.used_margin, acct.currency)}  # fmt: skip
    return Alert(kind, ts_ns, message, account_id=acct.account_id, symbol=symbol,
                 currency=acct.currency, level=level, details={**figures, **details})  # fmt: skip


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
