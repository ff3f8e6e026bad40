"""Shared pieces of the command bus tests: one command of every bus type, in an order in
which each succeeds, whatever the client (in memory, or through Redis to a host)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from tests.trading.builders import destination_of
from trading.bus.codec import REGISTRY
from trading.bus.wire import Reply
from trading.catalogue import Catalogue
from trading.clients import ClientKind
from trading.commands import (
    AmendOrder,
    CancelOrder,
    ClosePosition,
    Command,
    CreateClient,
    DecideWithdrawal,
    HaltSymbol,
    HoldWithdrawal,
    OpenAccount,
    ReleaseWithdrawal,
    RequestWithdrawal,
    SetAccountState,
    SetLimits,
    SubmitOrder,
)
from trading.instrument import AccountType
from trading.risk import AccountState
from trading.validate import order_request
from trading.validate_funding import deposit


def person(client_id: int) -> CreateClient:
    return CreateClient(
        client_id, ClientKind.PERSON, "Jean Dupont", "FR", "jean@example.fr",
        dt.date(1980, 1, 1), national_id="FR19800101JEAN#DUPON",
    )  # fmt: skip


def run_every_type(
    send: Callable[[Command], Reply], catalogue: Catalogue, account_id: int, symbol: str
) -> dict[str, Reply]:
    """Send one command of each registered type (a second of a type is keyed ``Type#what``);
    the replies by key. ``symbol``'s market must be open and quoted; the limit order rests
    far below it."""
    replies: dict[str, Reply] = {}

    def go(name: str, cmd: Command) -> Reply:
        reply = send(cmd)
        replies[name] = reply
        assert reply.ok, (name, reply)
        return reply

    def ref_id(reply: Reply) -> int:
        return int(reply.unwrap()["ref"].split(":")[1])

    go("CreateClient", person(account_id))
    go("OpenAccount", OpenAccount(account_id, "USD", "retail", account_id, AccountType.MARGIN))
    go("SetLimits", SetLimits(account_id, max_order_lots=Decimal("50"), reason="onboarding"))
    go("Deposit", deposit(account_id=account_id, currency="USD", amount="50000.00",
                          method="card", provider="adyen", provider_ref=f"psp-{account_id}",
                          instrument_fingerprint="tok_4f9a"))  # fmt: skip
    destination = ref_id(go("AddDestination", destination_of(account_id)))
    inst = catalogue.get(symbol)
    low = inst.price_from_int(inst.tick_int * 10)
    market = order_request(
        catalogue, account_id=account_id, client_order_id=f"buy-{account_id}", symbol=symbol,
        side="buy", qty=str(inst.min_qty),
    )  # fmt: skip
    assert go("SubmitOrder#market", SubmitOrder(market)).unwrap()["status"] == "filled"
    request = order_request(
        catalogue, account_id=account_id, client_order_id=f"rest-{account_id}", symbol=symbol,
        side="buy", type="limit", qty=str(inst.min_qty), price=str(low),
    )  # fmt: skip
    order_id = go("SubmitOrder", SubmitOrder(request)).unwrap()["order_id"]
    go("AmendOrder", AmendOrder(account_id, order_id, price=inst.tick_int * 11))
    go("CancelOrder", CancelOrder(account_id, order_id, reason="client asked"))
    withdrawal = ref_id(
        go("RequestWithdrawal", RequestWithdrawal(account_id, "USD", 10_000, destination))
    )
    go("HoldWithdrawal", HoldWithdrawal(withdrawal, "source of funds check"))
    go("ReleaseWithdrawal", ReleaseWithdrawal(withdrawal, "documents received"))
    go("DecideWithdrawal", DecideWithdrawal(withdrawal, True, "checked"))
    go("SetAccountState", SetAccountState(account_id, AccountState.REDUCING_ONLY))
    go("ClosePosition", ClosePosition(account_id, symbol, None, "stop-out"))
    go("HaltSymbol", HaltSymbol(symbol, True, reason="news"))
    assert {k.split("#")[0] for k in replies} == set(REGISTRY), "a type has no round trip here"
    return replies
