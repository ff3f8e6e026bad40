"""Each OMS event kind and a login, as the features see them; what the flow skips; and the
dead letters of what it cannot read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ml.events import Event
from pipelines.fraud.convert import (
    Malformed,
    Opened,
    WithdrawalMove,
    convert_event,
    convert_login,
)
from pipelines.fraud.front import Front, FrontState, shard_of
from pipelines.fraud.sources import LoginBatch
from pipelines.positions.sources import EventBatch
from tests.pipelines.fraud.kit import event, login
from trading.catalogue import default_catalogue

CAT = default_catalogue()


def test_a_card_deposit_in_minor_units_becomes_a_decimal_amount_with_its_fingerprint() -> None:
    ev = event(3, 2, "cash.deposited", {"amount": 123_456, "currency": "USD", "txn_id": 1,
                                         "deposit_id": 1, "method": "card",
                                         "instrument_fingerprint": "fp-9"})  # fmt: skip
    got = convert_event(ev, 30, CAT)
    assert got == Event(ev.ts_ns, "deposit", 30, 3, amount=Decimal("1234.56"), currency="USD",
                        method="card", instrument_id="fp-9")  # fmt: skip


def test_a_bank_transfer_is_the_bank_method_and_a_yen_amount_has_no_decimals() -> None:
    ev = event(3, 2, "cash.deposited", {"amount": 5000, "currency": "JPY",
                                         "method": "bank_transfer"})  # fmt: skip
    got = convert_event(ev, 30, CAT)
    assert isinstance(got, Event) and got.method == "bank" and got.amount == Decimal(5000)
    assert got.instrument_id is None


def test_a_back_office_deposit_has_no_method() -> None:
    got = convert_event(event(3, 2, "cash.deposited", {"amount": 1, "currency": "USD"}), 30, CAT)
    assert isinstance(got, Event) and got.method is None and got.amount == Decimal("0.01")


def test_a_destination_added_names_its_kind_and_id() -> None:
    ev = event(3, 3, "cash.destination_added", {"destination_id": 17, "kind": "crypto",
                                                 "label": "x", "currency": "BTC",
                                                 "display": "bc1q…"})  # fmt: skip
    got = convert_event(ev, 30, CAT)
    assert got == Event(ev.ts_ns, "destination_added", 30, 3, method="crypto", currency="BTC",
                        destination_id="17")  # fmt: skip


def test_a_withdrawal_request_keeps_its_withdrawal_id_and_the_destinations_kind() -> None:
    ev = event(3, 4, "cash.withdrawal_requested", {"withdrawal_id": 8, "amount": 250_000,
                                                    "currency": "EUR", "destination_id": 17,
                                                    "kind": "ewallet"})  # fmt: skip
    got = convert_event(ev, 30, CAT)
    assert got == Event(ev.ts_ns, "withdrawal", 30, 3, amount=Decimal("2500.00"),
                        currency="EUR", method="ewallet", destination_id="17",
                        withdrawal_id=8)  # fmt: skip


@pytest.mark.parametrize(("kind", "state"), [
    ("cash.withdrawal_held", "held"), ("cash.withdrawal_released", "requested"),
    ("cash.withdrawal_approved", "approved"), ("cash.withdrawal_rejected", "rejected"),
])  # fmt: skip
def test_a_withdrawals_later_events_move_its_state(kind: str, state: str) -> None:
    ev = event(3, 5, kind, {"withdrawal_id": 8, "amount": 1, "currency": "USD", "reason": ""})
    assert convert_event(ev, None, CAT) == WithdrawalMove(3, 8, state)


def test_an_order_and_a_fill_in_lot_steps_and_price_units_become_lots_and_prices() -> None:
    inst = CAT.get("EUR/USD")
    order = event(3, 6, "order.submitted", {"symbol": "EUR/USD", "side": "buy", "qty": 25,
                                             "price": 108_123, "order_type": "limit"})  # fmt: skip
    got = convert_event(order, 30, CAT)
    assert got == Event(order.ts_ns, "order", 30, 3, symbol="EUR/USD", side="buy",
                        qty=inst.qty_from_int(25), price=inst.price_from_int(108_123))  # fmt: skip
    assert got.qty == Decimal(25) / 10**inst.qty_precision
    market = event(3, 7, "order.submitted", {"symbol": "EUR/USD", "side": "sell", "qty": 10})
    got = convert_event(market, 30, CAT)
    assert isinstance(got, Event) and got.price is None and got.side == "sell"
    fill = event(3, 8, "order.partially_filled", {"symbol": "EUR/USD", "side": "sell",
                                                   "qty": 10, "exec_id": "x1", "last_qty": 4,
                                                   "last_price": 108_050})  # fmt: skip
    got = convert_event(fill, 30, CAT)
    assert got == Event(fill.ts_ns, "fill", 30, 3, symbol="EUR/USD", side="sell",
                        qty=inst.qty_from_int(4), price=inst.price_from_int(108_050))  # fmt: skip


def test_what_the_features_do_not_read_is_nothing() -> None:
    accepted = event(3, 9, "order.accepted", {"symbol": "EUR/USD", "side": "buy", "qty": 1})
    back = event(3, 10, "order.partially_filled", {"symbol": "EUR/USD", "side": "buy"})  # no exec
    limits = event(3, 11, "account.limits_set", {"leverage": None})
    assert [convert_event(e, 30, CAT) for e in (accepted, back, limits)] == [None, None, None]


def test_an_account_opened_tells_its_client_or_none() -> None:
    assert convert_event(event(3, 1, "account.opened", {"client_id": 30}), None, CAT) == Opened(
        3, 30
    )
    assert convert_event(event(4, 1, "account.opened", {"currency": "USD"}), None, CAT) == Opened(
        4, None
    )


def test_a_login_becomes_a_login_event_and_a_staff_login_nothing() -> None:
    got = convert_login(login(99, 30, device="dev-7", ip="1.2.3.4", country="DE", success=False))
    assert got == Event(99, "login", 30, None, device_id="dev-7", ip="1.2.3.4", country="DE",
                        success=False)  # fmt: skip
    assert convert_login({**login(99, 30), "client_id": ""}) is None


@pytest.mark.parametrize(("body", "reason"), [
    ("{not json", "payload is not JSON"),
    ({"amount": "12.50", "currency": "USD"}, "amount is not an integer: '12.50'"),
    ({"amount": 100}, "currency missing"),
    ({"amount": 100, "currency": "XXX"}, "currency 'XXX' unknown"),
    ({"amount": 100, "currency": "USD", "method": "cheque"}, "method 'cheque' unknown"),
])  # fmt: skip
def test_a_malformed_deposit_says_why(body: object, reason: str) -> None:
    with pytest.raises(Malformed) as err:
        convert_event(event(3, 2, "cash.deposited", body), 30, CAT)  # type: ignore[arg-type]
    assert str(err.value).startswith(reason)


def test_an_unknown_symbol_or_side_and_a_bad_login_say_why() -> None:
    with pytest.raises(Malformed, match="symbol 'NOPE/USD' not in the catalogue"):
        convert_event(event(3, 6, "order.submitted", {"symbol": "NOPE/USD", "side": "buy",
                                                       "qty": 1}), 30, CAT)  # fmt: skip
    with pytest.raises(Malformed, match="side 'long' is not buy or sell"):
        convert_event(event(3, 6, "order.submitted", {"symbol": "EUR/USD", "side": "long",
                                                       "qty": 1}), 30, CAT)  # fmt: skip
    with pytest.raises(Malformed, match="ts_ns is not an integer"):
        convert_login({**login(1, 30), "ts_ns": "yesterday"})
    with pytest.raises(Malformed, match="client_id is not an integer"):
        convert_login({**login(1, 30), "client_id": "c-30"})


def _batch(*events: object, stream: str = "bourse:events:0") -> EventBatch:
    entries = [(f"{i + 1}-0", e) for i, e in enumerate(events)]
    return EventBatch("0", stream, entries, [], False)  # type: ignore[arg-type]


def test_the_links_stage_dead_letters_the_malformed_skips_the_clientless_and_goes_on() -> None:
    front = Front(FrontState(), CAT, None)
    deposit = {"amount": 100, "currency": "USD"}
    routed, dead = front.on_batch(_batch(
        event(1, 1, "account.opened", {"client_id": 10}, event_id=1),
        event(2, 1, "account.opened", {}, event_id=2),  # no client
        event(1, 2, "cash.deposited", "{broken", event_id=3),
        event(2, 2, "cash.deposited", deposit, event_id=4),  # skipped: no client
        event(7, 5, "cash.deposited", deposit, event_id=5),  # dead: never opened, no store
        event(1, 3, "cash.deposited", deposit, event_id=6),
        event(1, 3, "cash.deposited", deposit, event_id=6),  # the relay's redelivery
    ))  # fmt: skip
    assert [(d.stream_id, d.reason, d.event_id, d.account_id) for d in dead] == [
        ("3-0", "payload is not JSON (Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1))", 3, 1),
        ("5-0", "account 7 has no known client", 5, 7),
    ]  # fmt: skip
    assert dead[0].raw == "{broken"
    assert [(k, [e[1] for e in entries]) for k, entries in routed] == [(shard_of(10), ["e6"])]
    counts = front.state.counts
    assert (counts.no_client, counts.duplicates) == (1, 1)
    logins = LoginBatch("bourse:activity:logins", [("9-0", {**login(5, 10), "success": "maybe"}),
                                                  ("9-1", login(6, "")), ("9-2", login(7, 10))],
                        [])  # fmt: skip
    routed, dead = front.on_batch(logins)
    assert [(d.stream_id, d.reason) for d in dead] == [
        ("9-0", "success is not true or false: 'maybe'")
    ]
    assert [[e[2] for e in entries] for _k, entries in routed] == [["login:9-2"]]
    assert front.state.counts.skipped_logins == 1


def test_an_account_opened_before_the_streams_is_looked_up_in_the_store_once() -> None:
    asked: list[list[int]] = []

    def lookup(ids: list[int]) -> dict[int, int | None]:
        asked.append(ids)
        return {4: 40}

    front = Front(FrontState(), CAT, lookup)
    deposit = {"amount": 100, "currency": "USD"}
    routed, dead = front.on_batch(
        _batch(
            event(4, 7, "cash.deposited", deposit, event_id=1),
            event(5, 7, "cash.deposited", deposit, event_id=2),
        )
    )
    routed2, dead2 = front.on_batch(
        _batch(
            event(4, 8, "cash.deposited", deposit, event_id=3),
            event(5, 8, "cash.deposited", deposit, event_id=4),
        )
    )
    assert asked == [[4, 5]]
    assert [e[3].client_id for _k, es in routed + routed2 for e in es] == [40, 40]
    assert [d.reason for d in dead + dead2] == []  # 5 is known to have no client: skipped
    assert front.state.counts.no_client == 2
