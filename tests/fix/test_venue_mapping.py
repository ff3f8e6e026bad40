"""``mapping.translate``: what each LP message means for the OMS (no session needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trading.catalogue import default_catalogue
from trading.orders import Side
from trading.venues.base import ExecKind
from trading.venues.fix.chains import Chain
from trading.venues.fix.mapping import translate
from trading.venues.fix.messages import Inbound, order_id_of

INST = default_catalogue().get("EUR/USD")  # qty in hundredths of a lot, price in 1e-5
NOW = 1_767_600_000_000_000_000


def _chain(**kw: Any) -> Chain:
    return Chain(7, 1, "EUR/USD", Side.BUY, sent=1, live="7.0", **kw)


def _report(**kw: Any) -> Inbound:
    base: dict[str, Any] = dict(msg_type="8", seq_num=5, poss_dup=False, cl_ord_id="7.0",
                                exec_id="E1")  # fmt: skip
    base.update(kw)
    return Inbound(**base)


def test_fill_when_cumqty_is_already_forwarded_then_nothing_is_forwarded_again() -> None:
    chain = _chain(filled=100, notional=100 * 110_010, acked=True)
    t = translate("lp1", _report(exec_type="F", exec_id="E9", last_qty=Decimal(1),
                                 last_px=Decimal("1.10010"), cum_qty=Decimal(1),
                                 ord_status="2"), chain, INST, NOW)  # fmt: skip
    assert t.reports == []
    assert chain.filled == 100


def test_fill_when_new_then_forwarded_with_the_namespaced_exec_id() -> None:
    chain = _chain(acked=True)
    t = translate("lp1", _report(exec_type="F", last_qty=Decimal("0.3"),
                                 last_px=Decimal("1.10020"), cum_qty=Decimal("0.3"),
                                 ord_status="1"), chain, INST, NOW)  # fmt: skip
    (r,) = t.reports
    assert (r.exec_id, r.kind, r.last_qty, r.last_price, r.venue) == (
        "lp1:7:E1", ExecKind.FILL, 30, 110_020, "lp1",
    )  # fmt: skip
    assert t.end is None


def test_status_when_the_lp_filled_more_than_forwarded_then_a_catch_up_fill_keeps_avgpx() -> None:
    # 0.4 lot forwarded at 1.10000; the LP says 1 lot done at an average of 1.10006:
    # the missing 0.6 lot is at (1.10006 × 1 − 1.10000 × 0.4) / 0.6 = 1.10010.
    chain = _chain(filled=40, notional=40 * 110_000, acked=True)
    t = translate("lp1", _report(exec_type="I", ord_status="2", cum_qty=Decimal(1),
                                 avg_px=Decimal("1.10006")), chain, INST, NOW)  # fmt: skip
    (r,) = t.reports
    assert (r.kind, r.last_qty, r.last_price, r.exec_id) == (
        ExecKind.FILL, 60, 110_010, "lp1:7:cum:100",
    )  # fmt: skip
    assert t.end == "filled"


def test_status_in_fix42_when_canceled_then_canceled() -> None:
    chain = _chain(acked=True)
    t = translate("lp1", _report(exec_type="4", exec_trans_type="3", ord_status="4",
                                 cum_qty=Decimal(0)), chain, INST, NOW)  # fmt: skip
    assert [r.kind for r in t.reports] == [ExecKind.CANCELED]
    assert t.end == "canceled"


def test_status_when_the_order_is_unknown_to_the_lp_then_rejected_with_its_text() -> None:
    chain = _chain()
    t = translate("lp1", _report(exec_type="I", ord_status="8", text="unknown order",
                                 cum_qty=Decimal(0)), chain, INST, NOW)  # fmt: skip
    assert [(r.kind, r.reason) for r in t.reports] == [(ExecKind.REJECTED, "unknown order")]


def test_pending_reports_when_they_come_then_nothing_moves() -> None:
    for exec_type in ("A", "6", "E"):
        t = translate("lp1", _report(exec_type=exec_type, ord_status=exec_type),
                      _chain(acked=True), INST, NOW)  # fmt: skip
        assert (t.reports, t.exception) == ([], None)


def test_trade_bust_when_it_comes_then_an_exception_and_no_report() -> None:
    for kw in ({"exec_type": "H"}, {"exec_type": "2", "exec_trans_type": "1"}):
        t = translate("lp1", _report(**kw), _chain(acked=True), INST, NOW)
        assert t.reports == [] and t.exception == "trade_bust_or_correction"


def test_replaced_when_it_comes_then_the_new_terms_and_the_live_clordid() -> None:
    t = translate("lp1", _report(exec_type="5", ord_status="0", cl_ord_id="7.1",
                                 orig_cl_ord_id="7.0", order_qty=Decimal(2),
                                 price=Decimal("1.09500"), cum_qty=Decimal(0)),
                  _chain(acked=True), INST, NOW)  # fmt: skip
    (r,) = t.reports
    assert (r.kind, r.qty, r.price, t.live) == (ExecKind.REPLACED, 200, 109_500, "7.1")


def test_cancel_reject_when_it_answers_a_replace_then_replace_rejected() -> None:
    t = translate("lp1", _report(msg_type="9", cl_ord_id="7.2", cxl_rej_response_to="2",
                                 text="price too far"), _chain(acked=True), INST, NOW)  # fmt: skip
    assert [(r.kind, r.reason) for r in t.reports] == [(ExecKind.REPLACE_REJECTED, "price too far")]


def test_restated_when_the_terms_change_then_an_exception_and_no_move() -> None:
    t = translate("lp1", _report(exec_type="D", ord_status="0", order_qty=Decimal("0.5"),
                                 cum_qty=Decimal(0)), _chain(acked=True), INST, NOW)  # fmt: skip
    assert t.reports == [] and t.exception and t.exception.startswith("restated")


def test_clordid_when_not_ours_then_no_order_id() -> None:
    assert order_id_of("17.3") == 17
    for text in (None, "", "17", "x.1", "017.0", "17.a", "999-1"):
        assert order_id_of(text) is None, text


def test_expired_or_done_for_day_when_it_comes_then_expired_and_ended() -> None:
    for exec_type in ("C", "3"):
        m = _report(exec_type=exec_type, ord_status=exec_type, cum_qty=Decimal(0))
        t = translate("lp1", m, _chain(acked=True), INST, NOW)
        assert [r.kind for r in t.reports] == [ExecKind.EXPIRED] and t.end == "expired"


def test_cancel_when_a_fill_raced_it_then_the_fill_comes_first() -> None:
    chain = _chain(acked=True)
    t = translate("lp1", _report(exec_type="4", ord_status="4", cum_qty=Decimal("0.2"),
                                 avg_px=Decimal("1.10000")), chain, INST, NOW)  # fmt: skip
    assert [(r.kind, r.last_qty, r.last_price) for r in t.reports] == [
        (ExecKind.FILL, 20, 110_000), (ExecKind.CANCELED, 0, 0),
    ]  # fmt: skip
