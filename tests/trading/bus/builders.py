"""Shared pieces of the command bus tests: one command of every bus type, in an order in
which each succeeds, whatever the client (in memory, or through Redis to a host)."""

from __future__ import annotations

from collections.abc import Callable

from trading.bus.codec import REGISTRY
from trading.bus.wire import Reply
from trading.commands import (
    AmendOrder,
    CancelOrder,
    Command,
    DecideWithdrawal,
    Deposit,
    HaltSymbol,
    OpenAccount,
    RequestWithdrawal,
    SetAccountState,
    SubmitOrder,
)
from trading.instruments import Catalogue
from trading.risk import AccountState
from trading.validate import order_request


def run_every_type(
    send: Callable[[Command], Reply], catalogue: Catalogue, account_id: int, symbol: str
) -> dict[str, Reply]:
    """Send one command of each registered type; the replies by type name. ``symbol``'s
    market must be open and quoted; the limit order rests far below it."""
    replies: dict[str, Reply] = {}

    def go(name: str, cmd: Command) -> Reply:
        reply = send(cmd)
        replies[name] = reply
        assert reply.ok, (name, reply)
        return reply

    go("OpenAccount", OpenAccount(account_id, "USD", "retail"))
    go("Deposit", Deposit(account_id, "USD", 5_000_000, f"psp-{account_id}"))
    inst = catalogue.get(symbol)
    low = inst.price_from_int(inst.tick_int * 10)
    request = order_request(
        catalogue, account_id=account_id, client_order_id=f"rest-{account_id}", symbol=symbol,
        side="buy", type="limit", qty=str(inst.min_qty), price=str(low),
    )  # fmt: skip
    order_id = go("SubmitOrder", SubmitOrder(request)).unwrap()["order_id"]
    go("AmendOrder", AmendOrder(account_id, order_id, price=inst.tick_int * 11))
    go("CancelOrder", CancelOrder(account_id, order_id))
    ref = go("RequestWithdrawal", RequestWithdrawal(account_id, "USD", 10_000)).unwrap()["ref"]
    go("DecideWithdrawal", DecideWithdrawal(int(ref.split(":")[1]), True, "checked"))
    go("SetAccountState", SetAccountState(account_id, AccountState.REDUCING_ONLY))
    go("HaltSymbol", HaltSymbol(symbol, True))
    assert set(replies) == set(REGISTRY), "a registered type has no round trip here"
    return replies
