"""The OMS end to end on a real store (SQLite and PostgreSQL): orders, fills, lots, ledger."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from tests.trading.builders import FakeClock, Rig, make_oms, make_rig, store_snapshot
from trading import ledger as L
from trading.commands import (
    AmendOrder,
    ApplyReports,
    CancelOrder,
    DecideWithdrawal,
    HaltSymbol,
    OrderAck,
    QuoteUpdate,
    RequestWithdrawal,
    SetAccountState,
)
from trading.config import OMSConfig, RiskConfig, TierLimits
from trading.errors import ConflictError, InsufficientFunds, InvalidOrder, NotFound, StoreError
from trading.orders import TRANSITIONS, OrderStatus
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.queries import balance_as_of, order_history
from trading.store.verify import verify_audit, verify_ledger
from trading.venues.base import ExecKind, ExecutionReport

S = OrderStatus


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    r = make_rig(store_dsn)
    r.open_accounts(1, 2)
    return r


def _ack(rig: Rig, cmd: object) -> OrderAck:
    result = rig.oms.execute_one(cmd)  # type: ignore[arg-type]
    assert isinstance(result, OrderAck)
    return result


def _assert_invariants(rig: Rig) -> None:
    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == []
        assert verify_audit(conn) == []


def _count(rig: Rig, table: object) -> int:
    with rig.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_market_buy_when_quote_fresh_then_fills_at_ask_plus_markup_and_holds_margin(
    rig: Rig,
) -> None:
    ack = _ack(rig, rig.submit(1, "c1", qty="1"))

    assert ack.status is S.FILLED
    assert ack.filled_notional == 100 * 110013  # 1.10010 ask + 3 ticks markup
    # 1 lot = 110,013.00 USD notional at 1:30 -> 3,667.10 margin; 3.50 commission.
    assert rig.oms.balance(L.client_margin(1, "USD")) == -366710
    assert rig.oms.cash_available(1) == 10_000_000 - 366710 - 350
    assert rig.oms.balance(L.revenue_commission("USD")) == -350
    # 3 ticks of markup on 100,000 EUR: 3.00 USD of revenue, taken out of the B-book result.
    assert rig.oms.balance(L.revenue_markup("USD")) == -300
    assert rig.oms.balance(L.venue_pnl("bbook", "USD")) == 300
    assert rig.oms.balance(L.client_position(1, "EUR/USD")) == 100
    assert rig.oms.balance(L.venue_position("bbook", "EUR/USD")) == -100
    _assert_invariants(rig)


def test_submit_when_same_client_order_id_and_same_request_then_returns_original(rig: Rig) -> None:
    first = _ack(rig, rig.submit(1, "dup", qty="1"))
    before = store_snapshot(rig.engine)

    again = _ack(rig, rig.submit(1, "dup", qty="1"))

    assert again.order_id == first.order_id and again.duplicate
    assert store_snapshot(rig.engine) == before


def test_submit_when_same_client_order_id_in_one_batch_then_one_order(rig: Rig) -> None:
    results = rig.oms.execute([rig.submit(1, "b1", qty="1"), rig.submit(1, "b1", qty="1")])

    assert [r.order_id for r in results] == [results[0].order_id] * 2  # type: ignore[union-attr]
    assert _count(rig, s.orders) == 1


def test_submit_when_same_client_order_id_and_other_request_then_conflict_and_nothing_changes(
    rig: Rig,
) -> None:
    _ack(rig, rig.submit(1, "dup", qty="1"))
    before = store_snapshot(rig.engine)

    with pytest.raises(ConflictError) as err:
        rig.oms.execute_one(rig.submit(1, "dup", qty="2"))

    assert err.value.code == "conflict"
    assert store_snapshot(rig.engine) == before


def test_submit_when_client_order_id_of_closed_order_after_restart_then_found_in_store(
    rig: Rig,
) -> None:
    first = _ack(rig, rig.submit(1, "old", qty="1"))
    restarted = make_oms(rig.engine, rig.clock)
    restarted.seed_quotes()

    again = restarted.oms.execute_one(rig.submit(1, "old", qty="1"))
    assert isinstance(again, OrderAck) and again.duplicate and again.order_id == first.order_id
    with pytest.raises(ConflictError):
        restarted.oms.execute_one(rig.submit(1, "old", qty="3"))


def test_client_order_ids_when_same_id_on_two_accounts_then_two_orders(rig: Rig) -> None:
    a = _ack(rig, rig.submit(1, "same", qty="1"))
    b = _ack(rig, rig.submit(2, "same", qty="1"))
    assert a.order_id != b.order_id and not b.duplicate


def test_fifo_when_sell_crosses_two_lots_then_oldest_closes_first_with_exact_pnl(
    rig: Rig,
) -> None:
    _ack(rig, rig.submit(1, "b1", qty="1"))  # buy at 1.10013
    rig.clock.advance(1_000_000_000)
    rig.oms.execute([QuoteUpdate(rig.quote("EUR/USD", "1.10100", "1.10110"))])
    _ack(rig, rig.submit(1, "b2", qty="1"))  # buy at 1.10113
    rig.clock.advance(1_000_000_000)
    rig.oms.execute([QuoteUpdate(rig.quote("EUR/USD", "1.10200", "1.10210"))])

    _ack(rig, rig.submit(1, "s1", side="sell", qty="1.5"))  # sell at 1.10197

    with rig.engine.connect() as conn:
        closures = conn.execute(
            select(s.lot_closures.c.lot_id, s.lot_closures.c.qty,
                   s.lot_closures.c.realized_quote, s.lot_closures.c.realized)
            .order_by(s.lot_closures.c.closure_id)
        ).all()  # fmt: skip
        lots = conn.execute(
            select(s.lots.c.lot_id, s.lots.c.remaining).order_by(s.lots.c.lot_id)
        ).all()
    # 1 lot: (1.10197 - 1.10013) * 100,000 = 184.00; 0.5 lot: (1.10197 - 1.10113) * 50,000 = 42
    assert [(c.qty, Decimal(c.realized_quote), c.realized) for c in closures] == [
        (100, Decimal(184), 18400),
        (50, Decimal(42), 4200),
    ]
    assert [lot.remaining for lot in lots] == [0, 50]
    assert rig.oms.position(1, "EUR/USD").net == 50  # type: ignore[union-attr]
    _assert_invariants(rig)


def test_fill_when_it_crosses_zero_then_closes_long_and_opens_short(rig: Rig) -> None:
    _ack(rig, rig.submit(1, "b1", qty="1"))

    _ack(rig, rig.submit(1, "s1", side="sell", qty="2.5"))

    pos = rig.oms.position(1, "EUR/USD")
    assert pos is not None and pos.net == -150
    with rig.engine.connect() as conn:
        kinds = [
            r[0]
            for r in conn.execute(select(s.ledger_txns.c.kind).order_by(s.ledger_txns.c.txn_id))
        ]
    assert kinds[-2:] == ["fill_close", "fill_open"]
    _assert_invariants(rig)


def test_pnl_when_quote_currency_is_jpy_then_converted_to_usd_at_quote_in_force(rig: Rig) -> None:
    _ack(rig, rig.submit(1, "b1", symbol="USD/JPY", qty="1"))  # buy at 150.023
    rig.oms.execute([QuoteUpdate(rig.quote("USD/JPY", "151.003", "151.023"))])

    _ack(rig, rig.submit(1, "s1", symbol="USD/JPY", side="sell", qty="1"))  # sell at 151.000

    with rig.engine.connect() as conn:
        row = conn.execute(select(s.lot_closures)).one()
    # (151.000 - 150.023) * 100,000 = 97,700 JPY at mid 151.013 -> 646.96 USD
    assert Decimal(row.realized_quote) == Decimal(97700)
    assert row.quote_currency == "JPY"
    expected = (Decimal(97700) / Decimal("151.013")).quantize(Decimal("0.01"))
    assert row.realized == int(expected * 100)
    _assert_invariants(rig)


def test_limit_when_not_marketable_then_rests_and_fills_on_a_later_quote(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "l1", type="limit", price="1.09950", qty="1"))
    assert ack.status is S.ACCEPTED

    rig.oms.execute([QuoteUpdate(rig.quote("EUR/USD", "1.09930", "1.09940"))])

    order_row = _order_row(rig, ack.order_id)
    assert order_row.status == "filled"
    assert order_row.filled_notional == 100 * 109943  # the better price: ask + markup
    assert rig.oms.open_order_count == 0


def test_stop_when_trigger_crossed_then_triggered_then_filled_in_history(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "st", type="stop", trigger_price="1.10100", qty="1"))
    assert ack.status is S.ACCEPTED

    rig.oms.execute([QuoteUpdate(rig.quote("EUR/USD", "1.10095", "1.10105"))])

    with rig.engine.connect() as conn:
        statuses = [e["status"] for e in order_history(conn, ack.order_id)]
    assert statuses == ["submitted", "accepted", "triggered", "filled"]


def test_history_when_any_order_then_every_step_is_a_legal_transition(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "h", type="limit", price="1.09000", qty="1"))
    _ack(rig, AmendOrder(1, ack.order_id, price=109100))
    _ack(rig, CancelOrder(1, ack.order_id))

    with rig.engine.connect() as conn:
        statuses = [S(e["status"]) for e in order_history(conn, ack.order_id)]
    path = [S.INITIALIZED, *statuses]
    assert all((a, b) in TRANSITIONS for a, b in pairwise(path))
    assert statuses == [S.SUBMITTED, S.ACCEPTED, S.PENDING_REPLACE, S.ACCEPTED,
                        S.PENDING_CANCEL, S.CANCELED]  # fmt: skip


def test_market_when_larger_than_quoted_size_then_fills_in_steps(rig: Rig) -> None:
    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10000", "1.10010", bid_size=100, ask_size=100))]
    )

    ack = _ack(rig, rig.submit(1, "big", qty="2.5"))
    assert (ack.status, ack.filled_qty) == (S.PARTIALLY_FILLED, 100)

    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10001", "1.10011", bid_size=100, ask_size=100))]
    )
    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10002", "1.10012", bid_size=100, ask_size=100))]
    )

    row = _order_row(rig, ack.order_id)
    assert (row.status, row.filled_qty) == ("filled", 250)
    assert row.filled_notional == 100 * 110013 + 100 * 110014 + 50 * 110015


def test_ioc_when_partly_fillable_then_remainder_canceled(rig: Rig) -> None:
    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10000", "1.10010", bid_size=100, ask_size=100))]
    )

    ack = _ack(rig, rig.submit(1, "ioc", qty="3", tif="ioc"))

    assert (ack.status, ack.filled_qty) == (S.CANCELED, 100)


def test_fok_when_not_fillable_in_full_then_canceled_without_fills(rig: Rig) -> None:
    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10000", "1.10010", bid_size=100, ask_size=100))]
    )

    ack = _ack(rig, rig.submit(1, "fok", qty="3", tif="fok"))

    assert (ack.status, ack.filled_qty) == (S.CANCELED, 0)
    assert _count(rig, s.executions) == 0


def test_market_when_quote_stale_then_rejected_with_reason(rig: Rig) -> None:
    rig.clock.advance(10 * 1_000_000_000)

    ack = _ack(rig, rig.submit(1, "stale", qty="1"))

    assert ack.status is S.REJECTED
    assert ack.reason is not None and ack.reason.startswith("stale_quote")


def test_market_when_fill_beyond_slippage_bound_then_rejected(rig: Rig) -> None:
    ack = _ack(
        rig,
        rig.submit(1, "slip", qty="1", reference_price="1.10000", max_slippage_ticks=5),
    )
    assert ack.status is S.REJECTED and ack.reason and ack.reason.startswith("slippage")

    ok = _ack(rig, rig.submit(1, "slip2", qty="1", reference_price="1.10010", max_slippage_ticks=5))
    assert ok.status is S.FILLED


def test_amend_when_quantity_below_filled_then_invalid_and_nothing_changes(rig: Rig) -> None:
    rig.oms.execute(
        [QuoteUpdate(rig.quote("EUR/USD", "1.10000", "1.10010", bid_size=100, ask_size=100))]
    )
    ack = _ack(rig, rig.submit(1, "p", qty="3"))
    before = store_snapshot(rig.engine)

    with pytest.raises(InvalidOrder):
        rig.oms.execute_one(AmendOrder(1, ack.order_id, qty=100))

    assert store_snapshot(rig.engine) == before


def test_cancel_when_order_not_open_then_not_found(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "f", qty="1"))
    with pytest.raises(NotFound):
        rig.oms.execute_one(CancelOrder(1, ack.order_id))
    with pytest.raises(NotFound):
        rig.oms.execute_one(CancelOrder(2, 999_999))


# -- pre-trade risk -------------------------------------------------------------------------


def _denied(ack: OrderAck, code: str) -> None:
    assert ack.status is S.DENIED, ack
    assert ack.reason is not None and ack.reason.startswith(code), ack.reason


def test_risk_when_margin_short_then_denied_with_numbers(store_dsn: str) -> None:
    rig = make_rig(store_dsn)
    rig.open_accounts(1, cash_minor=100_00)  # 100.00 USD

    ack = _ack(rig, rig.submit(1, "m", qty="1"))

    _denied(ack, "insufficient_margin")
    with rig.engine.connect() as conn:
        event = order_history(conn, ack.order_id)[-1]
    assert event["code"] == "insufficient_margin"
    assert Decimal(event["details"]["required"]) > Decimal(event["details"]["free_margin"])


def test_risk_when_order_too_large_then_fat_finger_denied(rig: Rig) -> None:
    _denied(_ack(rig, rig.submit(1, "ff", qty="25")), "max_order_qty")


def test_risk_when_position_would_exceed_limit_then_denied(store_dsn: str) -> None:
    config = OMSConfig(risk=RiskConfig(tiers={"retail": TierLimits(max_position_lots=Decimal(2))}))
    rig = make_rig(store_dsn, config=config)
    rig.open_accounts(1)
    _ack(rig, rig.submit(1, "a", qty="1.5"))

    _denied(_ack(rig, rig.submit(1, "b", qty="1")), "position_limit")
    assert _ack(rig, rig.submit(1, "c", side="sell", qty="1")).status is S.FILLED


def test_risk_when_account_halted_or_reducing_only_then_denied(rig: Rig) -> None:
    _ack(rig, rig.submit(1, "open", qty="1"))
    rig.oms.execute_one(SetAccountState(1, AccountState.REDUCING_ONLY))
    _denied(_ack(rig, rig.submit(1, "more", qty="1")), "reducing_only")
    assert _ack(rig, rig.submit(1, "less", side="sell", qty="0.5")).status is S.FILLED

    rig.oms.execute_one(SetAccountState(1, AccountState.HALTED))
    _denied(_ack(rig, rig.submit(1, "none", side="sell", qty="0.5")), "account_halted")


def test_risk_when_symbol_halted_then_denied_until_resumed(rig: Rig) -> None:
    rig.oms.execute_one(HaltSymbol("EUR/USD", True))
    _denied(_ack(rig, rig.submit(1, "h1", qty="1")), "symbol_halted")
    restarted = make_oms(rig.engine, rig.clock)  # a halt survives a restart
    restarted.seed_quotes()
    _denied(_ack(restarted, rig.submit(1, "h1b", qty="1")), "symbol_halted")

    restarted.oms.execute_one(HaltSymbol("EUR/USD", False))
    assert _ack(restarted, rig.submit(1, "h2", qty="1")).status is S.FILLED


def test_risk_when_session_closed_then_denied(rig: Rig) -> None:
    rig.oms.execute([QuoteUpdate(rig.quote("AAPL", "190.00", "190.02"))])
    # 08:00 UTC on a Monday: the US equity session opens at 14:30 UTC.
    _denied(_ack(rig, rig.submit(1, "eq", symbol="AAPL", qty="1")), "session_closed")


def test_risk_when_restricted_symbol_then_denied(store_dsn: str) -> None:
    rig = make_rig(
        store_dsn, config=OMSConfig(risk=RiskConfig(restricted_symbols=frozenset({"XAU/USD"})))
    )
    rig.open_accounts(1)
    _denied(_ack(rig, rig.submit(1, "x", symbol="XAU/USD", qty="0.1")), "symbol_restricted")


def test_risk_when_order_rate_exceeded_then_denied(store_dsn: str) -> None:
    config = OMSConfig(risk=RiskConfig(tiers={"retail": TierLimits(max_orders_per_second=3)}))
    rig = make_rig(store_dsn, config=config)
    rig.open_accounts(1)

    acks = rig.oms.execute(
        [rig.submit(1, f"r{i}", type="limit", price="1.09", qty="0.1") for i in range(4)]
    )

    assert [a.status for a in acks] == [S.ACCEPTED] * 3 + [S.DENIED]  # type: ignore[union-attr]
    rig.clock.advance(1_100_000_000)
    assert (
        _ack(rig, rig.submit(1, "r5", type="limit", price="1.09", qty="0.1")).status is S.ACCEPTED
    )


def test_risk_when_cash_instrument_sold_beyond_holding_then_short_sale_denied(rig: Rig) -> None:
    _ack(rig, rig.submit(1, "btc", symbol="BTC/USD", qty="0.01"))
    _denied(
        _ack(rig, rig.submit(1, "short", symbol="BTC/USD", side="sell", qty="0.02")),
        "short_sale_not_allowed",
    )


# -- execution reports ------------------------------------------------------------------------


def _fill(order_id: int, exec_id: str, qty: int, price: int) -> ExecutionReport:
    return ExecutionReport(exec_id, order_id, ExecKind.FILL, 1, last_qty=qty, last_price=price,
                           venue="bbook")  # fmt: skip


def test_exec_report_when_exec_id_already_applied_then_nothing_changes(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "ext", type="limit", price="1.05000", qty="1"))
    rig.oms.execute_one(ApplyReports([_fill(ack.order_id, "X-1", 40, 105000)]))
    before = store_snapshot(rig.engine)

    rig.oms.execute_one(ApplyReports([_fill(ack.order_id, "X-1", 40, 105000)]))

    assert store_snapshot(rig.engine) == before
    assert _order_row(rig, ack.order_id).filled_qty == 40


def test_exec_report_when_fill_exceeds_order_then_refused_and_recorded(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "ov", type="limit", price="1.05000", qty="1"))

    rig.oms.execute_one(ApplyReports([_fill(ack.order_id, "X-9", 150, 105000)]))

    assert _order_row(rig, ack.order_id).filled_qty == 0
    with rig.engine.connect() as conn:
        reasons = [r[0] for r in conn.execute(select(s.exec_exceptions.c.reason))]
    assert reasons == ["overfill"]
    _assert_invariants(rig)


# -- cash -----------------------------------------------------------------------------------


def test_withdrawal_when_requested_then_funds_held_until_decided(rig: Rig) -> None:
    done = rig.oms.execute_one(RequestWithdrawal(1, "USD", 1_000_00, rig.destination(1)))
    wid = int(done.ref.split(":")[1])  # type: ignore[union-attr]
    assert rig.oms.cash_available(1) == 10_000_000 - 1_000_00
    assert rig.oms.balance(L.client_withdrawal_pending(1, "USD")) == -1_000_00

    rig.oms.execute_one(DecideWithdrawal(wid, approve=False))
    assert rig.oms.cash_available(1) == 10_000_000

    done = rig.oms.execute_one(RequestWithdrawal(1, "USD", 2_000_00, rig.destination(1)))
    rig.oms.execute_one(DecideWithdrawal(int(done.ref.split(":")[1]), approve=True))  # type: ignore[union-attr]
    assert rig.oms.cash_available(1) == 10_000_000 - 2_000_00
    assert rig.oms.balance(L.psp_clearing("USD")) == 2 * 10_000_000 - 2_000_00
    _assert_invariants(rig)


def test_withdrawal_when_beyond_free_cash_then_refused_and_nothing_changes(rig: Rig) -> None:
    dest = rig.destination(1)
    before = store_snapshot(rig.engine)
    with pytest.raises(InsufficientFunds):
        rig.oms.execute_one(RequestWithdrawal(1, "USD", 10_000_001, dest))
    assert store_snapshot(rig.engine) == before


def test_balance_as_of_when_time_given_then_sums_postings_up_to_it(rig: Rig) -> None:
    t_before = rig.clock.now_ns
    rig.clock.advance(5_000_000)
    rig.oms.execute_one(RequestWithdrawal(1, "USD", 500_00, rig.destination(1)))

    with rig.engine.connect() as conn:
        assert balance_as_of(conn, L.client_cash(1, "USD"), t_before) == -10_000_000
        assert (
            balance_as_of(conn, L.client_cash(1, "USD"), rig.clock.now_ns) == -10_000_000 + 500_00
        )
        assert balance_as_of(conn, L.client_cash(1, "USD"), 0) == 0


# -- durability -----------------------------------------------------------------------------


def test_batch_when_commit_fails_then_every_command_errs_and_memory_is_reloaded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    cash = rig.oms.cash_available(1)

    def broken_flush(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("trading.oms.engine.flush", broken_flush)
    results = rig.oms.execute([rig.submit(1, "lost1", qty="1"), rig.submit(1, "lost2", qty="1")])
    monkeypatch.undo()

    assert all(isinstance(r, StoreError) for r in results)
    assert rig.oms.cash_available(1) == cash
    assert rig.oms.position(1, "EUR/USD") is None
    # The same client order id is free: nothing was stored under it.
    assert _ack(rig, rig.submit(1, "lost1", qty="1")).status is S.FILLED
    _assert_invariants(rig)


def test_restart_when_orders_rest_then_recovered_and_still_fill(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "rest", type="limit", price="1.09000", qty="1"))

    restarted = make_oms(rig.engine, FakeClock(rig.clock.now_ns))
    restarted.oms.execute([QuoteUpdate(restarted.quote("EUR/USD", "1.08980", "1.08990"))])

    assert _order_row(restarted, ack.order_id).status == "filled"
    _assert_invariants(restarted)


def test_audit_when_record_edited_or_deleted_then_verify_reports_it(rig: Rig) -> None:
    _ack(rig, rig.submit(1, "a1", qty="1"))
    _ack(rig, rig.submit(1, "a2", qty="1"))
    with rig.engine.begin() as conn:
        assert verify_audit(conn) == []
        conn.execute(s.audit_log.update().where(s.audit_log.c.seq == 2).values(payload="{}"))
        assert any("edited" in p.detail for p in verify_audit(conn))
    with rig.engine.begin() as conn:
        last = conn.execute(select(func.max(s.audit_log.c.seq))).scalar_one()
        conn.execute(s.audit_log.delete().where(s.audit_log.c.seq == last))
        details = " ".join(p.detail for p in verify_audit(conn))
    assert "head" in details


def test_ledger_verify_when_posting_tampered_then_reports_unbalanced_and_stale_cache(
    rig: Rig,
) -> None:
    _ack(rig, rig.submit(1, "t1", qty="1"))
    with rig.engine.begin() as conn:
        pid = conn.execute(select(func.max(s.postings.c.posting_id))).scalar_one()
        conn.execute(s.postings.update().where(s.postings.c.posting_id == pid).values(amount=1))
        checks = {p.check for p in verify_ledger(conn)}
    assert {"transactions_balance", "cached_balances"} <= checks


def _order_row(rig: Rig, order_id: int) -> object:
    with rig.engine.connect() as conn:
        return conn.execute(select(s.orders).where(s.orders.c.order_id == order_id)).one()


def test_exec_report_when_cancel_ack_repeated_then_applied_once_and_nothing_else_changes(
    rig: Rig,
) -> None:
    ack = _ack(rig, rig.submit(1, "ext2", type="limit", price="1.05000", qty="1"))
    _ack(rig, CancelOrder(1, ack.order_id))  # the B-book cancels it at once
    # An outside venue repeating a refused report: recorded once, then ignored.
    canceled = ExecutionReport("LP-C1", ack.order_id, ExecKind.CANCELED, 1, venue="lp")
    rig.oms.execute_one(ApplyReports([canceled]))
    before = store_snapshot(rig.engine)

    rig.oms.execute_one(ApplyReports([canceled]))
    rig.oms.execute_one(ApplyReports([canceled, canceled]))

    assert store_snapshot(rig.engine) == before


def test_exec_report_when_outside_ack_then_recorded_and_repeat_ignored(rig: Rig) -> None:
    ack = _ack(rig, rig.submit(1, "ext3", type="limit", price="1.05000", qty="1"))
    rig.oms.execute_one(CancelOrder(1, ack.order_id))
    with rig.engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(select(s.executions.c.kind))]
    assert kinds == []  # the B-book's own acknowledgements are not kept as executions

    order = _ack(rig, rig.submit(1, "ext4", type="limit", price="1.05000", qty="1"))
    trig = ExecutionReport("LP-T1", order.order_id, ExecKind.TRIGGERED, 2, venue="lp")
    rig.oms.execute_one(ApplyReports([trig]))
    before = store_snapshot(rig.engine)
    rig.oms.execute_one(ApplyReports([trig]))

    assert store_snapshot(rig.engine) == before
    with rig.engine.connect() as conn:
        assert [r[0] for r in conn.execute(select(s.executions.c.kind))] == ["triggered"]
    _assert_invariants(rig)
