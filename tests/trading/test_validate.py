"""trading/validate.py alone: whatever a client sends, the edge either refuses it with an
``InvalidInput`` subclass or builds a command whose every integer and text fits the store."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trading import validate
from trading.catalogue import default_catalogue
from trading.errors import InvalidInput

CATALOGUE = default_catalogue()
INT64 = 2**63 - 1

integers = st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, INT64, INT64 + 1, 2**31])
decimals = st.decimals(allow_nan=False, allow_infinity=False).map(str) | st.sampled_from(
    ["1", "0.01", "1e30", "92233720368547.75807", "1.10000", "-1", "1e-30"]
)
texts = st.text(max_size=80) | st.sampled_from(["dup", "dup\n", "a" * 64, "a" * 64 + "\n"])


def _fits(command: Any) -> None:
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if dataclasses.is_dataclass(value):
            _fits(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -INT64 - 1 <= value <= INT64, (f.name, value)
        elif isinstance(value, str):
            assert value.isprintable() and len(value) <= 64, (f.name, value)


@given(
    account_id=integers,
    client_order_id=texts,
    symbol=st.sampled_from(["EUR/USD", "BTC/USD", "XAU/USD", "USD/JPY"]),
    kind=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
    tif=st.sampled_from(["gtc", "gtd", "ioc"]),
    qty=decimals,
    price=st.none() | decimals,
    trigger_price=st.none() | decimals,
    expire_ns=st.none() | integers,
    reference_price=st.none() | decimals,
    max_slippage_ticks=st.none() | integers,
)
def test_order_request_when_anything_is_sent_then_refused_or_storable(**fields: Any) -> None:
    fields["type"] = fields.pop("kind")
    try:
        request = validate.order_request(CATALOGUE, side="buy", **fields)
    except InvalidInput:
        return
    _fits(request)
    assert request.max_slippage_ticks is None or request.max_slippage_ticks < 2**31
    inst = CATALOGUE.get(request.symbol)
    for price in (request.price, request.trigger_price, request.reference_price):
        assert price is None or price * inst.qty_to_int(inst.max_qty) <= INT64


@given(account_id=integers, currency=st.sampled_from(["USD", "JPY", "BTC", "XYZ"]),
       amount=decimals | integers, ref=texts)  # fmt: skip
def test_deposit_and_withdrawal_when_anything_is_sent_then_refused_or_storable(
    account_id: Any, currency: str, amount: Any, ref: Any
) -> None:
    for build in (
        lambda: validate.deposit(account_id, currency, amount, ref),
        lambda: validate.withdrawal_request(account_id, currency, amount, 1),
    ):
        try:
            command = build()
        except InvalidInput:
            continue
        _fits(command)
        assert 0 < command.amount <= validate.MAX_AMOUNT_MINOR


@given(order_id=integers, qty=st.none() | decimals, price=st.none() | decimals)
def test_amend_when_anything_is_sent_then_refused_or_storable(
    order_id: Any, qty: Any, price: Any
) -> None:
    try:
        command = validate.amend_order(CATALOGUE, "EUR/USD", account_id=1, order_id=order_id,
                                       qty=qty, price=price)  # fmt: skip
    except InvalidInput:
        return
    _fits(command)
