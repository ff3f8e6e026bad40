"""The daily cut-off as the OMS runs it: end-of-day marks and financing (swap) of positions.

``Rollover(now_ns)`` takes every cut-off due since each symbol's last one
(``trading.rollover.due_cutoffs``), oldest first, and for each:

- records the symbol's end-of-day mark (``eod_marks``: bid, ask, the quote's own time) and
  tells it on the house stream (``eod.marked``);
- charges or pays each open position in the symbol its financing at the catalogue's rate
  for its side over the cut-off's nights (``trading.financing``): a ledger transaction of
  kind ``financing`` between the client's cash and ``house:financing:{ccy}``, a
  ``financing`` row, and a ``position.financed`` event on the account's stream.

Positions are taken as they stand when the command runs: the host sends ``Rollover`` at the
cut-off (the simulation sends it before its first command past one), so they are the
positions held over it.

A cut-off with no usable quote (none, or crossed) has no mark and charges nothing: it is
recorded as ``eod.missed`` on the house stream with the reason, and audited, and counts as
done (the back office posts what it decides by hand). Done means the symbol's last cut-off
moves past it: kept in memory, and read back on recover from the last ``eod_marks`` row and
the last ``eod.missed`` event of each symbol, so that a repeated ``Rollover`` or a restart
never marks or charges a cut-off twice (the unique keys of both tables would refuse it too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from trading.accounts import finances_positions
from trading.commands import Done, Rollover
from trading.errors import InvalidRollover
from trading.events import HOUSE_ACCOUNT
from trading.financing import EodMark, compute_financing, eod_mark, financing_entry
from trading.instrument import AccountType
from trading.oms.handlers import Handler, Known
from trading.rollover import Cutoff, due_cutoffs
from trading.store import schema as s
from trading.store.domain_rows import eod_mark_row, financing_row

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from trading.oms.engine import OMS

EOD_MISSED = "eod.missed"


def last_cutoffs(conn: Connection) -> dict[str, int]:
    """Each symbol's last cut-off done, marked or missed, as the store holds it."""
    m = s.eod_marks
    last = {
        r[0]: int(r[1])
        for r in conn.execute(select(m.c.symbol, func.max(m.c.cutoff_ns)).group_by(m.c.symbol))
    }
    o = s.outbox
    missed = select(o.c.payload).where(o.c.account_id == HOUSE_ACCOUNT, o.c.type == EOD_MISSED)
    for (payload,) in conn.execute(missed):
        body = json.loads(payload)
        symbol, at = body["symbol"], int(body["cutoff_ns"])
        last[symbol] = max(last.get(symbol, at), at)
    return last


def rollover(oms: OMS, cmd: Rollover, known: Known) -> Done:
    now = oms.clock()
    if cmd.now_ns > now:
        raise InvalidRollover(f"a rollover up to {cmd.now_ns} is ahead of the clock ({now})")
    if oms._last_cutoff is None:
        with oms.engine.connect() as conn:
            oms._last_cutoff = last_cutoffs(conn)
    last = oms._last_cutoff
    due = due_cutoffs(oms.catalogue, last, cmd.now_ns)
    if not due:
        return Done(f"rollover:{cmd.now_ns}", "nothing due")
    marked = missed = financed = 0
    for cut in due:
        mark = _mark(oms, cut, now)
        last[cut.symbol] = cut.at_ns
        if mark is None:
            missed += 1
            continue
        marked += 1
        financed += _finance(oms, cut, mark, now)
    oms.journal.emit_house("rollover.completed", now, {
        "now_ns": cmd.now_ns, "cutoffs": len(due), "marked": marked, "missed": missed,
        "positions": financed,
    })  # fmt: skip
    oms.journal.audit("rollover", f"rollover:{cmd.now_ns}",
                      {"cutoffs": len(due), "marked": marked, "missed": missed,
                       "positions": financed}, actor=cmd.actor)  # fmt: skip
    return Done(f"rollover:{cmd.now_ns}", f"{len(due)} cut-offs, {financed} positions")


def _mark(oms: OMS, cut: Cutoff, now: int) -> EodMark | None:
    """Record the symbol's end-of-day mark; None (recorded as missed) without a quote."""
    quote = oms.quotes.get(cut.symbol)
    common: dict[str, Any] = {"symbol": cut.symbol, "trade_date": cut.trade_date.isoformat(),
                              "cutoff_ns": cut.at_ns}  # fmt: skip
    reason = "no_quote"
    if quote is not None:
        try:
            mark = eod_mark(quote, cut.trade_date)
        except InvalidRollover:
            reason = "crossed_quote"
        else:
            oms._batch.add("eod_marks", eod_mark_row(mark, cut.at_ns))
            oms.journal.emit_house("eod.marked", now, {
                **common, "bid": mark.bid, "ask": mark.ask, "quote_ts_ns": mark.ts_ns,
            })  # fmt: skip
            return mark
    oms.journal.emit_house(EOD_MISSED, now, {**common, "reason": reason})
    oms.journal.audit("eod.missed", f"symbol:{cut.symbol}", {**common, "reason": reason})
    return None


def _finance(oms: OMS, cut: Cutoff, mark: EodMark, now: int) -> int:
    """Post the financing of every open position in the symbol; returns how many."""
    inst = oms.catalogue.get(cut.symbol)
    if inst.account_type is AccountType.CASH:
        return 0  # bought outright: no financing
    count = 0
    for acct in oms._accounts.values():
        pos = acct.positions.get(cut.symbol)
        if pos is None or pos.net == 0 or not finances_positions(acct.account_type):
            continue
        common: dict[str, Any] = {"symbol": cut.symbol, "trade_date": cut.trade_date.isoformat(),
                                  "cutoff_ns": cut.at_ns, "net_qty": pos.net}  # fmt: skip
        rate = oms._rate(inst, acct.currency)
        if rate is None:
            reason = f"no conversion rate {inst.quote} -> {acct.currency}"
            oms.journal.emit(acct.account_id, "position.financing_skipped", now,
                             {**common, "reason": "no_conversion_rate"})  # fmt: skip
            oms.journal.audit("financing.skipped", f"account:{acct.account_id}",
                              {**common, "reason": reason})  # fmt: skip
            continue
        charge = compute_financing(pos.net, mark.mark_for(pos.net), inst, inst.swap_rate(pos.net),
                                   cut.nights, rate, acct.currency)  # fmt: skip
        entry = financing_entry(acct.account_id, charge, cut.trade_date)
        txn_id = None if entry is None else oms._post(entry, now)
        fid = oms._next("financing")
        oms._batch.add("financing",
                       financing_row(fid, acct.account_id, charge, cut.trade_date, cut.at_ns,
                                     txn_id))  # fmt: skip
        payload: dict[str, Any] = {
            **common, "financing_id": fid, "nights": charge.nights, "mark": charge.mark,
            "rate": str(charge.rate), "day_count": charge.day_count,
            "amount_quote": str(charge.amount_quote), "quote_currency": charge.quote_currency,
            "conversion_rate": str(charge.conversion_rate), "amount": charge.amount,
            "currency": charge.currency,
        }  # fmt: skip
        if txn_id is not None:
            payload["txn_id"] = txn_id
        oms.journal.emit(acct.account_id, "position.financed", now, payload)
        count += 1
    return count


HANDLERS: dict[type, Handler] = {Rollover: rollover}
