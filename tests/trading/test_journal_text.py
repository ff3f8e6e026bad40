"""The journal writes an order event as text: the same text as the dict it stands for.

``_order_event_body`` is the definition (the envelope, the order's fields, the move's data
over them, as ``emit`` builds it); ``Journal.order_event`` writes it faster. Both must give
the same bytes for any order and any data, strings that need escaping included.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trading.oms.journal import Journal, _order_event_body
from trading.orders import Initiator, Order, OrderEvent, OrderStatus, OrderType, Side, TimeInForce
from trading.store.repository import Batch

texts = st.text(max_size=12)  # any unicode: quotes, backslashes, controls, non-ASCII
ints = st.integers(-(10**20), 10**20)
scalars = st.one_of(st.none(), st.booleans(), ints, texts)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# Data keys: the move's own, and now and then one of the order's (the dict path).
keys = st.one_of(texts, st.sampled_from(["reason", "exec_id", "venue", "qty", "status", "price"]))


@st.composite
def orders(draw: Any) -> Order:
    return Order(
        order_id=draw(st.integers(1, 10**12)), account_id=draw(st.integers(0, 10**9)),
        client_order_id=draw(texts), symbol=draw(texts), side=draw(st.sampled_from(Side)),
        type=draw(st.sampled_from(OrderType)), qty=draw(ints), price=draw(st.none() | ints),
        trigger_price=draw(st.none() | ints), tif=TimeInForce.GTC, expire_ns=None,
        reference_price=None, max_slippage_ticks=None, fingerprint="", created_ns=0,
        status=draw(st.sampled_from(OrderStatus)), filled_qty=draw(ints),
        initiator=draw(st.sampled_from(Initiator)), house_reason=draw(st.none() | texts),
    )  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(orders(), st.sampled_from(OrderStatus), ints, st.dictionaries(keys, values, max_size=5))
def test_order_event_text_is_the_json_of_its_dict(
    order: Order, moved_to: OrderStatus, ts_ns: int, data: dict[str, Any]
) -> None:
    journal = Journal("oms", lambda: 0, None, 41, {order.account_id: 6})
    batch = Batch()
    journal.begin(batch)
    event = OrderEvent(order.order_id, moved_to, ts_ns, data)
    journal.order_event(order, event)
    (row,) = batch.rows["outbox"]
    body = _order_event_body(order, event, 42, 7, f"order.{moved_to.value}")
    assert row["payload"] == json.dumps(body, separators=(",", ":"))
    assert (row["event_id"], row["account_seq"], row["type"]) == (42, 7, f"order.{moved_to}")
    decoded = json.loads(row["payload"])
    assert decoded["side"] == order.side.value
    assert decoded["client_order_id"] == order.client_order_id
