"""Orders over REST: submit, list with keyset pages, get, cancel, amend; idempotency; the
core's denials as problems; another client's orders are 404."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.serving.api.conftest import assert_problem
from tests.serving.api.trading_helpers import Client, client, order
from tests.trading.bus.test_host import Served


def test_submit_when_a_market_buy_then_201_filled_and_readable(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    res = order(api, alice, client_order_id="c-1")
    assert res.status_code == 201, res.text
    ack = res.json()
    assert (ack["status"], ack["filled_qty"], ack["symbol"]) == ("filled", "1.00", "EUR/USD")
    got = api.get(alice.url(f"/orders/{ack['order_id']}"), headers=alice.headers).json()
    assert got["client_order_id"] == "c-1" and got["status"] == "filled"
    assert got["qty"] == "1.00" and got["avg_price"] == ack["avg_price"] is not None
    listed = api.get(alice.url("/orders"), headers=alice.headers).json()
    assert [o["order_id"] for o in listed["items"]] == [ack["order_id"]]
    assert listed["next_cursor"] is None


def test_submit_when_the_same_key_and_body_again_then_the_original_and_one_order(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    key = {"Idempotency-Key": "k-123"}
    first = order(api, alice, headers=key)
    again = order(api, alice, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(api.get(alice.url("/orders"), headers=alice.headers).json()["items"]) == 1
    other = order(api, alice, qty="2", headers=key)
    assert_problem(other, 409, "idempotency_conflict")
    assert len(api.get(alice.url("/orders"), headers=alice.headers).json()["items"]) == 1


def test_submit_when_a_client_order_id_is_reused_with_another_body_then_409(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    first = order(api, alice, client_order_id="mine-1")
    assert order(api, alice, client_order_id="mine-1").json() == first.json()
    assert_problem(order(api, alice, client_order_id="mine-1", side="sell"), 409,
                   "idempotency_conflict")  # fmt: skip


def test_list_when_paged_then_every_order_once_newest_first_under_opaque_cursors(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    made = [order(api, alice, qty="0.1").json()["order_id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(alice.url("/orders"), params=params, headers=alice.headers).json()
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor.startswith("c1.") and str(seen[-1]) not in cursor
    assert seen == sorted(made, reverse=True)
    res = api.get(alice.url("/orders"), params={"cursor": "123"}, headers=alice.headers)
    assert assert_problem(res, 422, "invalid_input")["field"] == "cursor"


def test_list_when_filtered_by_status_and_symbol_then_only_those(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    order(api, alice)
    working = order(api, alice, type="limit", price="1.00000").json()
    gold = order(api, alice, symbol="XAU/USD", qty="0.01").json()
    h = alice.headers
    res = api.get(alice.url("/orders"), params={"status": "accepted"}, headers=h).json()
    assert [o["order_id"] for o in res["items"]] == [working["order_id"]]
    res = api.get(alice.url("/orders"), params={"symbol": "XAU/USD"}, headers=h).json()
    assert [o["order_id"] for o in res["items"]] == [gold["order_id"]]
    res = api.get(alice.url("/orders"), params={"from": "2200-01-01T00:00:00Z"}, headers=h)
    assert res.json()["items"] == []


def test_amend_and_cancel_when_working_then_changed_then_canceled_then_409(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    ack = order(api, alice, type="limit", price="1.00000").json()
    url = alice.url(f"/orders/{ack['order_id']}")
    res = api.patch(url, json={"price": "1.00050", "qty": "2"}, headers=alice.headers)
    assert res.status_code == 200, res.text
    got = api.get(url, headers=alice.headers).json()
    assert (got["price"], got["qty"]) == ("1.00050", "2.00")
    assert api.delete(url, headers=alice.headers).json()["status"] == "canceled"
    assert_problem(api.delete(url, headers=alice.headers), 409, "invalid_transition")
    assert_problem(api.patch(url, json={}, headers=alice.headers), 422, "invalid_input")


def test_submit_when_margin_is_short_then_409_with_the_core_code_and_the_order_recorded(
    api: TestClient, served: Served
) -> None:
    poor = client(api, served, "alice", amount="100.00")
    body = assert_problem(order(api, poor, qty="10"), 409, "insufficient_margin")
    got = api.get(poor.url(f"/orders/{body['order_id']}"), headers=poor.headers).json()
    assert got["status"] == "denied"
    assert_problem(order(api, poor, symbol="EUR/USX"), 422, "unknown_symbol")
    assert_problem(order(api, poor, qty="0.001"), 422, "invalid_quantity")


def test_orders_when_another_client_asks_then_404_and_nothing_changes(
    api: TestClient, served: Served
) -> None:
    alice, bob = client(api, served, "alice"), client(api, served, "bob")
    ack = order(api, alice, type="limit", price="1.00000").json()
    url = alice.url(f"/orders/{ack['order_id']}")
    assert_problem(api.get(alice.url("/orders"), headers=bob.headers), 404, "not_found")
    assert_problem(api.get(url, headers=bob.headers), 404, "not_found")
    assert_problem(api.delete(url, headers=bob.headers), 404, "not_found")
    assert_problem(api.patch(url, json={"qty": "3"}, headers=bob.headers), 404, "not_found")
    assert_problem(order(api, Client(alice.account_id, bob.headers)), 404, "not_found")
    # Bob's own account does not reach Alice's order either.
    assert_problem(api.get(bob.url(f"/orders/{ack['order_id']}"), headers=bob.headers), 404,
                   "not_found")  # fmt: skip
    assert api.get(url, headers=alice.headers).json()["status"] == "accepted"
    assert len(api.get(alice.url("/orders"), headers=alice.headers).json()["items"]) == 1
