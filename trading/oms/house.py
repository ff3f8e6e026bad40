"""House actions on an account: ``ClosePosition``, the market close a stop-out or the desk
places (``trading.house``). It only reduces, so it skips the account's state, limits and
margin (``SKIPPED_CHECKS``), never the market's; the order records initiator ``house`` and
the command's reason, and the audit record the command's actor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading.commands import ClosePosition, OrderAck
from trading.errors import InvalidInput
from trading.house import SKIPPED_CHECKS, close_request
from trading.oms.handlers import Handler, Known
from trading.oms.orders import place
from trading.orders import Initiator, Order

if TYPE_CHECKING:
    from trading.oms.engine import OMS


def close_position(oms: OMS, cmd: ClosePosition, known: Known) -> OrderAck:
    acct = oms._account(cmd.account_id)
    inst = oms.catalogue.get(cmd.symbol)
    if not isinstance(cmd.reason, str) or not cmd.reason:
        raise InvalidInput("a house close says why", field="reason")
    pos = acct.positions.get(inst.symbol)
    order_id = oms._ids["order"] + 1
    # Its client order id is made of its order id: unique, and outside a client's ids.
    request = close_request(acct.account_id, inst.symbol, pos.net if pos else 0, cmd.qty,
                            order_id)  # fmt: skip
    order = Order.from_request(oms._next("order"), request, oms.clock())
    order.initiator, order.house_reason = Initiator.HOUSE, cmd.reason
    return place(oms, acct, request, order, SKIPPED_CHECKS)


HANDLERS: dict[type, Handler] = {ClosePosition: close_position}
