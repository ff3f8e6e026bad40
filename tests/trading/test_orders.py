"""trading/orders.py alone: the transition table, fills that never exceed the quantity, and
the request fingerprint that tells a retry from a different order under the same id."""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.errors import InvalidStateTransition
from trading.orders import (
    TERMINAL,
    TRANSITIONS,
    WORKING,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    check_transition,
)

S = OrderStatus
ALL_PAIRS = list(itertools.product(OrderStatus, repeat=2))


def _request(**changes: object) -> OrderRequest:
    base = OrderRequest(1, "c-1", "EUR/USD", Side.BUY, OrderType.LIMIT, 500, price=110_000)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _order(qty: int = 500) -> Order:
    return Order.from_request(7, _request(qty=qty), 1_000)


@pytest.mark.parametrize(("current", "new"), sorted(TRANSITIONS))
def test_check_transition_when_in_the_table_then_allowed(
    current: OrderStatus, new: OrderStatus
) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"), [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]
)
def test_check_transition_when_not_in_the_table_then_refused_with_both_states(
    current: OrderStatus, new: OrderStatus
) -> None:
    with pytest.raises(InvalidStateTransition) as caught:
        check_transition(current, new)
    assert caught.value.code == "invalid_transition"
    assert caught.value.details == {"from_status": current.value, "to_status": new.value}


def test_table_when_terminal_then_no_way_out() -> None:
    assert {S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED} == TERMINAL
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL]


def _reachable(start: OrderStatus) -> set[OrderStatus]:
    seen, todo = {start}, deque([start])
    while todo:
        current = todo.popleft()
        for frm, to in TRANSITIONS:
            if frm is current and to not in seen:
                seen.add(to)
                todo.append(to)
    return seen


def test_table_when_walked_then_every_state_reachable_and_every_state_can_end() -> None:
    assert _reachable(S.INITIALIZED) == set(OrderStatus)
    for status in OrderStatus:
        assert _reachable(status) & TERMINAL, status
    # Nothing goes back to the start, and a working order cannot be denied pre-trade.
    assert not [pair for pair in TRANSITIONS if pair[1] is S.INITIALIZED]
    assert [frm for frm, to in TRANSITIONS if to is S.DENIED] == [S.INITIALIZED]


def test_apply_when_legal_then_status_time_and_history_follow() -> None:
    order = _order()
    for i, status in enumerate((S.SUBMITTED, S.ACCEPTED, S.PENDING_REPLACE, S.ACCEPTED), 1):
        event = order.apply(status, 1_000 + i, note=i)
        assert (order.status, order.updated_ns) == (status, 1_000 + i)
        assert order.history[-1] is event and event.data == {"note": i}
    assert [e.status for e in order.history] == [
        S.SUBMITTED, S.ACCEPTED, S.PENDING_REPLACE, S.ACCEPTED]  # fmt: skip


def test_apply_when_illegal_then_order_unchanged() -> None:
    order = _order()
    order.apply(S.SUBMITTED, 1_001)
    before = dataclasses.replace(order, history=list(order.history))
    with pytest.raises(InvalidStateTransition):
        order.apply(S.EXPIRED, 1_002)
    assert order == before


@pytest.mark.parametrize("working", sorted(WORKING))
@pytest.mark.parametrize("pending", [S.PENDING_CANCEL, S.PENDING_REPLACE])
def test_apply_when_a_request_leaves_a_working_state_then_it_is_remembered(
    working: OrderStatus, pending: OrderStatus
) -> None:
    order = _order()
    path = {S.ACCEPTED: [S.SUBMITTED, S.ACCEPTED],
            S.TRIGGERED: [S.SUBMITTED, S.ACCEPTED, S.TRIGGERED],
            S.PARTIALLY_FILLED: [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED]}[working]  # fmt: skip
    for status in path:
        order.apply(status, 1)
    order.apply(pending, 2)
    assert order.resume_status is working


def test_apply_when_cancel_requested_before_acceptance_then_nothing_to_resume() -> None:
    order = _order()
    order.apply(S.SUBMITTED, 1)
    order.apply(S.PENDING_CANCEL, 2)
    assert order.resume_status is None


@given(
    qty=st.integers(1, 10_000),
    fills=st.lists(st.tuples(st.integers(1, 4_000), st.integers(1, 10**7)), max_size=30),
)
def test_add_fill_when_fills_arrive_then_never_beyond_the_quantity(
    qty: int, fills: list[tuple[int, int]]
) -> None:
    order = _order(qty)
    taken: list[tuple[int, int]] = []
    for fill_qty, price in fills:
        if fill_qty <= order.leaves_qty:
            order.add_fill(fill_qty, price)
            taken.append((fill_qty, price))
        else:
            before = (order.filled_qty, order.filled_notional)
            with pytest.raises(AssertionError):
                order.add_fill(fill_qty, price)
            assert (order.filled_qty, order.filled_notional) == before
        assert 0 <= order.filled_qty <= order.qty
        assert order.leaves_qty == order.qty - order.filled_qty
    assert order.filled_qty == sum(q for q, _ in taken)
    assert order.filled_notional == sum(q * p for q, p in taken)


@pytest.mark.parametrize("bad", [0, -1])
def test_add_fill_when_not_positive_then_refused(bad: int) -> None:
    order = _order()
    with pytest.raises(AssertionError):
        order.add_fill(bad, 110_000)
    assert order.filled_qty == 0


_FIELDS = {
    "symbol": st.sampled_from(["EUR/USD", "USD/JPY", "XAU/USD"]),
    "side": st.sampled_from(list(Side)),
    "type": st.sampled_from(list(OrderType)),
    "qty": st.integers(1, 10**6),
    "price": st.none() | st.integers(1, 10**9),
    "trigger_price": st.none() | st.integers(1, 10**9),
    "tif": st.sampled_from(list(TimeInForce)),
    "expire_ns": st.none() | st.integers(1, 2**63 - 1),
    "reference_price": st.none() | st.integers(1, 10**9),
    "max_slippage_ticks": st.none() | st.integers(0, 2**31 - 1),
}
requests = st.fixed_dictionaries(_FIELDS)


@given(a=requests, b=requests)
def test_fingerprint_when_terms_differ_then_fingerprints_differ(
    a: dict[str, object], b: dict[str, object]
) -> None:
    fa, fb = _request(**a).fingerprint(), _request(**b).fingerprint()
    assert (fa == fb) == (a == b)


@given(terms=requests, account=st.integers(1, 10**9), client_id=st.text(min_size=1))
def test_fingerprint_when_only_the_ids_differ_then_the_same(
    terms: dict[str, object], account: int, client_id: str
) -> None:
    # The ids are the key the fingerprint is compared under, not part of it.
    other = _request(**terms, account_id=account, client_order_id=client_id)
    assert _request(**terms).fingerprint() == other.fingerprint()


def test_from_request_when_built_then_a_fresh_order_carrying_the_fingerprint() -> None:
    request = _request(tif=TimeInForce.GTD, expire_ns=5_000)
    order = Order.from_request(9, request, 1_234)
    assert order.fingerprint == request.fingerprint()
    assert (order.status, order.filled_qty, order.created_ns, order.updated_ns) == (
        S.INITIALIZED, 0, 1_234, 1_234)  # fmt: skip
    assert order.history == [] and order.expire_ns == 5_000 and not order.is_terminal
