"""House closes (``ClosePosition``): a market order the house places that only reduces.

A house close is how a stop-out or a desk closes a position whatever the account's state:
it is allowed on a halted or reducing-only account and when the free margin is negative,
because it can only free margin. It still needs what any fill needs: the symbol not halted,
its session open and a quote; those denials stay, and are recorded on the order as usual.
"""

from __future__ import annotations

from typing import Final

from trading.errors import InvalidOrder, NotFound
from trading.orders import OrderRequest, OrderType, Side, TimeInForce

# A client order id must start with a letter or a digit (trading.validate.CLIENT_ORDER_ID):
# one starting with ':' can never clash with a client's own id on the account.
HOUSE_ORDER_PREFIX: Final = ":house:"

# Which pre-trade checks a house close skips (the DenialCode values), for the risk module.
SKIPPED_CHECKS: Final = frozenset(
    {
        "account_halted", "reducing_only", "rate_limited", "symbol_restricted",
        "max_order_qty", "max_order_notional", "position_limit", "insufficient_margin",
    }
)  # fmt: skip


def house_client_order_id(seq: int) -> str:
    """The client order id of the house's ``seq``-th order (``seq`` unique per account, e.g.
    the order id it will get), outside the ids a client may choose."""
    return f"{HOUSE_ORDER_PREFIX}{seq}"


def close_quantity(net_qty: int, qty: int | None, symbol: str) -> tuple[Side, int]:
    """(side, quantity in lot steps) of the market order closing ``qty`` of a position of
    ``net_qty`` (None: all of it). Refuses a flat position and a close larger than it."""
    if net_qty == 0:
        raise NotFound(f"no open position in {symbol}", symbol=symbol)
    size = abs(net_qty) if qty is None else qty
    if type(size) is not int or size <= 0:
        raise InvalidOrder(f"a close quantity must be a positive integer, got {qty!r}")
    if size > abs(net_qty):
        raise InvalidOrder(
            f"closing {size} would reverse the position of {net_qty} in {symbol}: a house "
            "close only reduces",
            symbol=symbol,
            position=net_qty,
            qty=size,
        )
    return (Side.SELL if net_qty > 0 else Side.BUY), size


def close_request(
    account_id: int, symbol: str, net_qty: int, qty: int | None, seq: int
) -> OrderRequest:
    """The market IOC order of a house close (the order row records initiator ``house`` and
    the command's reason as ``house_reason``)."""
    side, size = close_quantity(net_qty, qty, symbol)
    return OrderRequest(
        account_id=account_id,
        client_order_id=house_client_order_id(seq),
        symbol=symbol,
        side=side,
        type=OrderType.MARKET,
        qty=size,
        tif=TimeInForce.IOC,
    )
