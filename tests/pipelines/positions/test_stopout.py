"""Margin calls and stop-outs, on hand-computed accounts.

Account 7 is in USD with 1,000.00 USD of used margin; its margin level is equity / used
margin × 100, so equity 421.00 USD is a level of 42.10 %. Its positions, marked:

- XAU/USD short 0.10 lot (10 steps, 10 oz) opened at 2455.00, at the ask 2500.00:
  unrealized 10 × -45.00 = -450.00 USD
- EUR/USD long 1.00 lot (100 steps) at the bid 1.08320, unrealized -300.00 USD
- US500 long 1.0 lot (10 steps) at the bid 5000.0, unrealized +20.00 USD
- USD/JPY long 1.00 lot, no quote: unrealized unknown, never chosen
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from decimal import Decimal

from pipelines.positions.config import MarginLevels
from pipelines.positions.records import AccountRow, AlertKind, MarginState, PositionRow
from pipelines.positions.stopout import (
    StopOut,
    command_id,
    evaluate,
    margin_state,
    on_close_refused,
    on_house_order,
    parse_reason,
)

LEVELS = MarginLevels(call=Decimal(100), stop_out=Decimal(50))
TIMEOUT = 30_000_000_000
T0 = 1_700_000_000_000_000_000
USED = 100_000  # 1,000.00 USD


def account(equity: int, used: int = USED, account_type: str = "margin") -> AccountRow:
    level = Decimal(equity) * 100 / used if used else None
    return AccountRow(
        account_id=7, currency="USD", account_type=account_type, tier="retail", state="active",
        cash=equity - used, balance=equity, used_margin=used, withdrawal_pending=0,
        unrealized=0, equity=equity, free_margin=equity - used, margin_level=level,
        margin_state=MarginState.OK, unmarked=(), positions=3, last_seq=1, ts_ns=T0,
    )  # fmt: skip


def position(symbol: str, net_qty: int, mark: int | None, unrealized: int | None) -> PositionRow:
    return PositionRow(
        account_id=7, symbol=symbol, net_qty=net_qty, cost=0, avg_price=Decimal(0), lots=(),
        currency="USD", margin=0, mark=mark, unrealized=unrealized, ts_ns=T0,
    )  # fmt: skip


XAU = position("XAU/USD", -10, 250_000, -45_000)
EUR = position("EUR/USD", 100, 108_320, -30_000)
US500 = position("US500", 10, 50_000, 2_000)
JPY = position("USD/JPY", 100, None, None)
BOOK = [EUR, US500, JPY, XAU]


def order_event(
    cid: str, filled: int = 0, symbol: str = "XAU/USD", **extra: object
) -> dict[str, object]:
    return {"initiator": "house", "house_reason": f"stop-out {cid}: margin level ...",
            "symbol": symbol, "filled_qty": filled, **extra}  # fmt: skip


def kinds(alerts: Sequence[object]) -> list[AlertKind]:
    return [a.kind for a in alerts]  # type: ignore[attr-defined]


def test_close_when_under_stop_out_then_reason_gives_level_figures_and_mark() -> None:
    st = StopOut()

    alerts, closes = evaluate(account(42_100), [EUR], LEVELS, st, T0, TIMEOUT)

    assert kinds(alerts) == [AlertKind.MARGIN_CALL, AlertKind.STOP_OUT_STARTED,
                             AlertKind.STOP_OUT_CLOSE_SENT]  # fmt: skip
    assert len(closes) == 1
    close = closes[0]
    assert (close.command_id, close.account_id, close.symbol) == ("stopout-7-1-1", 7, "EUR/USD")
    assert close.reason == (
        "stop-out stopout-7-1-1: margin level 42.10% <= 50% (equity 421.00 USD, used margin "
        "1000.00 USD); close EUR/USD long 1.00 lot at bid 1.08320"
    )
    assert alerts[2].message == close.reason
    assert alerts[2].details["command_id"] == "stopout-7-1-1"
    assert alerts[1].level == Decimal("42.1")
    assert (st.episodes, st.active, st.step, st.pending) == (1, True, 1, "stopout-7-1-1")
    assert parse_reason(close.reason) == ("stopout-7-1-1", 7, 1, 1)


def test_largest_loss_when_chosen_then_first_and_next_after_fill() -> None:
    st = StopOut()

    _, first = evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    assert [c.symbol for c in first] == ["XAU/USD"]
    assert first[0].reason.endswith("close XAU/USD short 0.10 lots at ask 2500.00")
    assert on_house_order(st, 7, "order.submitted", order_event("stopout-7-1-1"), T0 + 1) == []
    assert on_house_order(st, 7, "order.filled", order_event("stopout-7-1-1", 10), T0 + 2) == []
    assert (st.step, st.pending, st.failed) == (2, None, frozenset())

    # XAU/USD closed: its loss is realized, the level is still under (equity 380.00 USD on
    # 800.00 USD of margin: 47.50 %).
    alerts, second = evaluate(account(38_000, 80_000), [EUR, US500, JPY], LEVELS, st, T0 + 3,
                              TIMEOUT)  # fmt: skip

    assert kinds(alerts) == [AlertKind.STOP_OUT_CLOSE_SENT]
    assert [(c.command_id, c.symbol) for c in second] == [("stopout-7-1-2", "EUR/USD")]
    assert "margin level 47.50% <= 50% (equity 380.00 USD, used margin 800.00 USD)" in (
        second[0].reason
    )


def test_equal_losses_when_chosen_then_by_symbol() -> None:
    a = position("GBP/USD", 100, 127_000, -10_000)
    b = position("AUD/USD", 100, 65_000, -10_000)

    _, closes = evaluate(account(40_000), [a, b], LEVELS, StopOut(), T0, TIMEOUT)

    assert [c.symbol for c in closes] == ["AUD/USD"]


def test_close_pending_when_evaluated_again_then_nothing_more_is_sent() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)

    again = [evaluate(account(30_000), BOOK, LEVELS, st, T0 + i, TIMEOUT) for i in (1, 2, 3)]

    assert again == [([], []), ([], []), ([], [])]
    on_house_order(st, 7, "order.accepted", order_event("stopout-7-1-1"), T0 + 4)
    assert evaluate(account(30_000), BOOK, LEVELS, st, T0 + 5, TIMEOUT) == ([], [])
    assert st.pending == "stopout-7-1-1"


def test_level_back_above_when_evaluated_then_episode_ends_and_a_new_one_numbers_on() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    # A deposit lifts the level while the close is in flight: its outcome comes first.
    assert evaluate(account(60_000), BOOK, LEVELS, st, T0 + 1, TIMEOUT) == ([], [])
    on_house_order(st, 7, "order.filled", order_event("stopout-7-1-1", 10), T0 + 2)

    alerts, closes = evaluate(account(60_000, 80_000), BOOK[:3], LEVELS, st, T0 + 3, TIMEOUT)

    assert (kinds(alerts), closes) == ([AlertKind.STOP_OUT_ENDED], [])
    assert alerts[0].message == ("stop-out 1 ended: margin level 75.00% > 50% (equity 600.00 "
                                 "USD, used margin 800.00 USD)")  # fmt: skip
    assert not st.active
    assert evaluate(account(60_000, 80_000), BOOK[:3], LEVELS, st, T0 + 4, TIMEOUT) == ([], [])

    alerts, closes = evaluate(account(30_000, 80_000), BOOK[:3], LEVELS, st, T0 + 5, TIMEOUT)

    assert kinds(alerts) == [AlertKind.STOP_OUT_STARTED, AlertKind.STOP_OUT_CLOSE_SENT]
    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-2-1", "EUR/USD")]


def test_no_margin_used_when_evaluated_then_episode_ends() -> None:
    st = StopOut()
    evaluate(account(42_100), [EUR], LEVELS, st, T0, TIMEOUT)
    on_house_order(st, 7, "order.filled", order_event("stopout-7-1-1", 100, "EUR/USD"), T0 + 1)

    alerts, closes = evaluate(account(12_100, 0), [], LEVELS, st, T0 + 2, TIMEOUT)

    assert kinds(alerts) == [AlertKind.MARGIN_CALL_CLEARED, AlertKind.STOP_OUT_ENDED]
    assert closes == []
    assert not st.active


def test_rejected_close_when_reported_then_alert_and_next_symbol() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    on_house_order(st, 7, "order.submitted", order_event("stopout-7-1-1"), T0 + 1)

    alerts = on_house_order(st, 7, "order.rejected", order_event(
        "stopout-7-1-1", reason="stale_quote: 7000 ms old, limit 5000 ms"), T0 + 2)  # fmt: skip

    assert kinds(alerts) == [AlertKind.STOP_OUT_CLOSE_FAILED]
    assert alerts[0].symbol == "XAU/USD"
    assert alerts[0].details["reason"] == "stale_quote: 7000 ms old, limit 5000 ms"
    assert alerts[0].details["command_id"] == "stopout-7-1-1"
    assert "stale_quote" in alerts[0].message
    assert (st.step, st.pending, st.failed) == (2, None, frozenset({"XAU/USD"}))

    _, closes = evaluate(account(42_100), BOOK, LEVELS, st, T0 + 3, TIMEOUT)

    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-1-2", "EUR/USD")]


def test_denied_close_when_reported_then_code_in_alert() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)

    body = order_event("stopout-7-1-1", code="symbol_halted", reason="symbol_halted: halted")

    alerts = on_house_order(st, 7, "order.denied", body, T0 + 1)

    assert alerts[0].details["code"] == "symbol_halted"
    assert st.failed == frozenset({"XAU/USD"})


def test_partial_fill_then_cancel_when_reported_then_same_symbol_again() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    on_house_order(st, 7, "order.partially_filled", order_event("stopout-7-1-1", 4,
                   exec_id="x1"), T0 + 1)  # fmt: skip
    assert st.pending == "stopout-7-1-1"

    alerts = on_house_order(st, 7, "order.canceled", order_event("stopout-7-1-1", 4,
                            reason="ioc"), T0 + 2)  # fmt: skip

    assert alerts == []
    assert (st.step, st.pending, st.failed) == (2, None, frozenset())
    # 0.06 lot (6 oz) of gold left, opened at 2455.00; the ask is up to 2560.00, so
    # 6 × 105.00 = -630.00 USD: still the largest loss.
    rest = position("XAU/USD", -6, 256_000, -63_000)
    _, closes = evaluate(account(44_000, 90_000), [EUR, US500, rest], LEVELS, st, T0 + 3,
                         TIMEOUT)  # fmt: skip
    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-1-2", "XAU/USD")]
    assert "close XAU/USD short 0.06 lots at ask 2560.00" in closes[0].reason


def test_nothing_closable_when_under_then_stuck_once_and_episode_stays() -> None:
    st = StopOut()
    evaluate(account(42_100), [XAU, JPY], LEVELS, st, T0, TIMEOUT)
    on_house_order(st, 7, "order.rejected", order_event("stopout-7-1-1", reason="no_quote"),
                   T0 + 1)  # fmt: skip

    alerts, closes = evaluate(account(42_100), [XAU, JPY], LEVELS, st, T0 + 2, TIMEOUT)

    assert (kinds(alerts), closes) == ([AlertKind.STOP_OUT_STUCK], [])
    assert alerts[0].details["failed"] == "XAU/USD"
    assert evaluate(account(40_000), [XAU, JPY], LEVELS, st, T0 + 3, TIMEOUT) == ([], [])
    assert (st.active, st.episodes) == (True, 1)
    # A quote arrives for USD/JPY: it can be closed now.
    jpy = position("USD/JPY", 100, 150_000, -5_000)
    _, closes = evaluate(account(40_000), [XAU, jpy], LEVELS, st, T0 + 4, TIMEOUT)
    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-1-2", "USD/JPY")]


def test_margin_call_when_crossed_then_raised_once_and_cleared() -> None:
    st = StopOut()
    seen = []
    for equity in (120_000, 90_000, 85_000, 100_000, 100_001, 110_000, 95_000):
        alerts, closes = evaluate(account(equity), BOOK, LEVELS, st, T0, TIMEOUT)
        assert closes == []
        seen.append(kinds(alerts))

    assert seen == [[], [AlertKind.MARGIN_CALL], [], [], [AlertKind.MARGIN_CALL_CLEARED], [],
                    [AlertKind.MARGIN_CALL]]  # fmt: skip
    assert st.called


def test_margin_call_message_when_raised_then_gives_the_figures() -> None:
    alerts, _ = evaluate(account(90_000), BOOK, LEVELS, StopOut(), T0, TIMEOUT)

    assert alerts[0].message == ("margin call: margin level 90.00% <= 100% (equity 900.00 USD, "
                                 "used margin 1000.00 USD)")  # fmt: skip
    assert (alerts[0].account_id, alerts[0].currency) == (7, "USD")


def test_cash_account_when_evaluated_then_never_called_or_stopped() -> None:
    st = StopOut()
    cash = account(10_000, account_type="cash")  # a level of 10 % would be a stop-out

    assert evaluate(cash, BOOK, LEVELS, st, T0, TIMEOUT) == ([], [])
    assert evaluate(account(10_000, 0), BOOK, LEVELS, st, T0, TIMEOUT) == ([], [])
    assert st == StopOut()


def test_pending_close_when_timed_out_then_given_up_and_next_step_sent() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    assert evaluate(account(42_100), BOOK, LEVELS, st, T0 + TIMEOUT - 1, TIMEOUT) == ([], [])

    alerts, closes = evaluate(account(42_100), BOOK, LEVELS, st, T0 + TIMEOUT, TIMEOUT)

    assert kinds(alerts) == [AlertKind.STOP_OUT_CLOSE_FAILED, AlertKind.STOP_OUT_CLOSE_SENT]
    assert alerts[0].details["code"] == "timeout"
    assert alerts[0].details["age_s"] == "30.000"
    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-1-2", "XAU/USD")]
    # A late word on the close given up changes nothing.
    late = on_house_order(st, 7, "order.rejected", order_event("stopout-7-1-1"), T0 + TIMEOUT + 1)
    assert late == []
    assert (st.pending, st.failed) == ("stopout-7-1-2", frozenset())


def test_resumed_from_before_the_send_when_its_submitted_is_seen_then_no_second_close() -> None:
    st = StopOut()
    evaluate(account(90_000), BOOK, LEVELS, st, T0, TIMEOUT)  # margin call only
    started = copy.deepcopy(st)
    _, sent = evaluate(account(42_100), BOOK, LEVELS, st, T0 + 1, TIMEOUT)
    assert [c.command_id for c in sent] == ["stopout-7-1-1"]
    snap_in_episode = copy.deepcopy(st)
    snap_in_episode.pending = None  # as if snapshotted between the start and the send
    for resumed in (started, snap_in_episode):
        on_house_order(resumed, 7, "order.submitted", order_event("stopout-7-1-1"), T0 + 2)

        assert (resumed.episodes, resumed.active, resumed.step) == (1, True, 1)
        assert resumed.pending == "stopout-7-1-1"
        assert resumed.pending_symbol == "XAU/USD"
        assert evaluate(account(42_100), BOOK, LEVELS, resumed, T0 + 3, TIMEOUT)[1] == []


def test_resumed_from_before_the_send_when_nothing_seen_then_the_same_command_id() -> None:
    first, second = StopOut(), StopOut()

    a = evaluate(account(42_100), BOOK, LEVELS, first, T0, TIMEOUT)
    b = evaluate(account(42_100), BOOK, LEVELS, second, T0 + 5, TIMEOUT)

    assert a[1] == b[1]
    assert a[1][0].command_id == command_id(7, 1, 1) == "stopout-7-1-1"


def test_resumed_when_the_outcome_is_seen_first_then_the_step_moves_on() -> None:
    st = StopOut()  # the snapshot predates the whole episode; the close was denied at once

    alerts = on_house_order(st, 7, "order.denied", order_event("stopout-7-1-1", code="no_quote"),
                            T0)  # fmt: skip

    assert kinds(alerts) == [AlertKind.STOP_OUT_CLOSE_FAILED]
    assert (st.episodes, st.active, st.step, st.pending) == (1, True, 2, None)
    _, closes = evaluate(account(42_100), BOOK, LEVELS, st, T0 + 1, TIMEOUT)
    assert [(c.command_id, c.symbol) for c in closes] == [("stopout-7-1-2", "EUR/USD")]


def test_other_orders_when_seen_then_ignored() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    before = copy.deepcopy(st)

    desk = {"initiator": "house", "house_reason": "desk: client asked", "symbol": "XAU/USD",
            "filled_qty": 0}  # fmt: skip
    client = {**order_event("stopout-7-1-1"), "initiator": "client"}
    other_account = order_event("stopout-8-1-1")
    for body in (desk, client, other_account):
        assert on_house_order(st, 7, "order.rejected", body, T0 + 1) == []

    assert st == before


def test_late_event_of_an_ended_episode_when_seen_then_ignored() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    evaluate(account(42_100), BOOK, LEVELS, st, T0 + TIMEOUT, TIMEOUT)  # step 1 given up
    on_house_order(st, 7, "order.filled", order_event("stopout-7-1-2", 10), T0 + TIMEOUT + 1)
    evaluate(account(70_000), BOOK, LEVELS, st, T0 + TIMEOUT + 2, TIMEOUT)
    assert not st.active
    before = copy.deepcopy(st)

    on_house_order(st, 7, "order.filled", order_event("stopout-7-1-1", 10), T0 + TIMEOUT + 3)

    assert st == before


def test_close_refused_as_a_command_when_told_then_failed() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)

    alerts = on_close_refused(st, 7, "stopout-7-1-1", "no open position in XAU/USD", T0 + 1)

    assert kinds(alerts) == [AlertKind.STOP_OUT_CLOSE_FAILED]
    assert (st.pending, st.step, st.failed) == (None, 2, frozenset({"XAU/USD"}))
    assert on_close_refused(st, 7, "stopout-7-1-1", "again", T0 + 2) == []


def test_margin_state_when_asked_then_by_level_and_episode() -> None:
    idle, running = StopOut(), StopOut(active=True)

    assert margin_state(None, LEVELS, idle) is MarginState.OK
    assert margin_state(Decimal("100.01"), LEVELS, idle) is MarginState.OK
    assert margin_state(Decimal(100), LEVELS, idle) is MarginState.MARGIN_CALL
    assert margin_state(Decimal(50), LEVELS, idle) is MarginState.STOP_OUT
    assert margin_state(Decimal(70), LEVELS, running) is MarginState.STOP_OUT


def test_state_when_pickled_then_equal() -> None:
    st = StopOut()
    evaluate(account(42_100), BOOK, LEVELS, st, T0, TIMEOUT)
    on_house_order(st, 7, "order.rejected", order_event("stopout-7-1-1"), T0 + 1)

    back = pickle.loads(pickle.dumps(st))

    assert back == st
    assert back.failed == frozenset({"XAU/USD"})
    assert len(pickle.dumps(st)) < 400
