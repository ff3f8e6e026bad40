"""trading/ledger.py alone: entries balance per commodity, transfers, the chart of accounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading import ledger as L
from trading.errors import LedgerError

ACCOUNTS = ["client:1:cash:USD", "client:2:cash:USD", "house:psp_clearing:USD",
            "client:1:cash:EUR", "house:revenue:commission:EUR"]  # fmt: skip
transfers = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(["USD", "EUR", "EURUSD"]),
        st.integers(-(10**15), 10**15),
    ),
    min_size=1,
    max_size=12,
)


@given(transfers)
def test_entry_when_built_from_transfers_then_balances_per_commodity(
    moves: list[tuple[str, str, str, int]],
) -> None:
    postings = [p for d, c, ccy, amount in moves for p in L.transfer(d, c, ccy, amount)]
    if all(p.amount == 0 for p in postings):
        with pytest.raises(LedgerError):
            L.entry("test", 1, "ref", postings)
        return
    entry = L.entry("test", 1, "ref", postings, memo="m")
    assert set(L.sums_by_commodity(entry.postings).values()) == {0}
    # Zero postings are dropped, nothing else is.
    assert list(entry.postings) == [p for p in postings if p.amount]
    assert (entry.kind, entry.account_id, entry.ref, entry.memo) == ("test", 1, "ref", "m")


@given(transfers, st.integers(1, 10**12), st.sampled_from(["USD", "EUR"]))
def test_entry_when_one_posting_is_off_then_refused_naming_the_commodity(
    moves: list[tuple[str, str, str, int]], off: int, currency: str
) -> None:
    postings = [p for d, c, ccy, amount in moves for p in L.transfer(d, c, ccy, amount)]
    postings.append(L.Posting("house:fees:" + currency, currency, off))
    with pytest.raises(LedgerError) as caught:
        L.entry("test", None, None, postings)
    assert caught.value.code == "ledger_error"
    assert caught.value.details["unbalanced"] == {currency: off}


def test_entry_when_balanced_overall_but_not_per_currency_then_refused() -> None:
    with pytest.raises(LedgerError, match="do not balance"):
        L.entry("fx", 1, None, [L.Posting("client:1:cash:USD", "USD", 100),
                                L.Posting("client:1:cash:EUR", "EUR", -100)])  # fmt: skip


def test_entry_when_empty_or_all_zero_then_refused() -> None:
    for postings in ([], [L.Posting("a", "USD", 0), L.Posting("b", "USD", 0)]):
        with pytest.raises(LedgerError, match="at least one non-zero posting"):
            L.entry("nothing", 1, None, postings)


@given(st.integers(-(10**18), 10**18))
def test_transfer_when_made_then_debit_positive_credit_negative_summing_to_zero(
    amount: int,
) -> None:
    debit, credit = L.transfer("a", "b", "USD", amount)
    assert (debit.account, debit.amount) == ("a", amount)
    assert (credit.account, credit.amount) == ("b", -amount)
    assert debit.commodity == credit.commodity == "USD"


@pytest.mark.parametrize(
    ("symbol", "commodity"),
    [("EUR/USD", "EURUSD"), ("btc/usdt", "BTCUSDT"), ("XAU/USD", "XAUUSD"), ("US500", "US500")],
)
def test_commodity_of_when_symbol_then_upper_alphanumerics(symbol: str, commodity: str) -> None:
    assert L.commodity_of(symbol) == commodity


def test_codes_when_built_then_the_documented_chart() -> None:
    assert L.client_cash(42, "USD") == "client:42:cash:USD"
    assert L.client_margin(42, "USD") == "client:42:margin:USD"
    assert L.client_withdrawal_pending(42, "EUR") == "client:42:withdrawal_pending:EUR"
    assert L.client_position(42, "EUR/USD") == "client:42:position:EURUSD"
    assert L.venue_position("bbook", "XAU/USD") == "house:bbook:position:XAUUSD"
    assert L.venue_pnl("bbook", "USD") == "house:bbook:pnl:USD"
    assert L.revenue_commission("USD") == "house:revenue:commission:USD"
    assert L.revenue_markup("USD") == "house:revenue:markup:USD"
    assert L.psp_clearing("USD") == "house:psp_clearing:USD"
    assert L.fees("JPY") == "house:fees:JPY"


CLIENT_CODES = (L.client_cash, L.client_margin, L.client_withdrawal_pending)


@given(
    a=st.tuples(st.integers(1, 2**63 - 1), st.sampled_from(["USD", "EUR", "JPY"])),
    b=st.tuples(st.integers(1, 2**63 - 1), st.sampled_from(["USD", "EUR", "JPY"])),
)
def test_client_codes_when_accounts_or_currencies_differ_then_codes_differ(
    a: tuple[int, str], b: tuple[int, str]
) -> None:
    codes_a = [make(*a) for make in CLIENT_CODES]
    codes_b = [make(*b) for make in CLIENT_CODES]
    assert len(set(codes_a)) == 3
    assert (set(codes_a) & set(codes_b) != set()) == (a == b)
    # Every code fits the ledger_accounts.code column.
    assert max(len(c) for c in codes_a) <= 128
