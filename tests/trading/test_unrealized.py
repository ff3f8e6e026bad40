"""trading.risk.unrealized adds exact terms as integers: the same result as the Decimal sum.

The reference below is the definition: each position's PnL as a Decimal (``position_pnl``),
summed in order in Decimal's default context, rounded once, half to even.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from trading.catalogue import default_catalogue
from trading.money import to_minor
from trading.positions import Position
from trading.quotes import Quote
from trading.risk import _round_half_even, position_pnl, unrealized

CAT = default_catalogue()
# Unit values from 1e-7 to 1, quote currencies with 0, 2 and 6 decimals.
SYMBOLS = ("EUR/USD", "USD/JPY", "XAU/USD", "XAG/USD", "JP225", "BTC/USD", "BTC/USDT", "AAPL")
CURRENCIES = ("USD", "EUR", "JPY", "USDT")


def outcome(f):  # type: ignore[no-untyped-def]
    """The value, or the exception's type (a sum beyond Decimal's precision raises)."""
    try:
        return f()
    except ArithmeticError as exc:
        return type(exc)


def reference(positions, currency, quotes, rates) -> int:  # type: ignore[no-untyped-def]
    total = Decimal(0)
    for pos in positions:
        if not pos.net:
            continue
        q = quotes.get(pos.symbol)
        inst = CAT.get(pos.symbol)
        r = Decimal(1) if inst.quote == currency else rates.get(inst.quote)
        if q is None or r is None:
            continue
        total += position_pnl(inst, pos.net, pos.cost, q, r)
    return to_minor(total, currency, ROUND_HALF_EVEN)


rate_values = st.one_of(
    st.none(),
    st.just(Decimal(1)),
    st.just(Decimal("1.0000")),
    # Inexact rates, as a division of two mids gives them (28 digits).
    st.integers(1, 10**6).map(lambda n: Decimal(n) / Decimal(7919)),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(200), places=6),
)


@st.composite
def books(draw):  # type: ignore[no-untyped-def]
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), max_size=6, unique=True))
    big = draw(st.booleans())
    bound = 10**22 if big else 10**9
    positions = []
    quotes: dict[str, Quote] = {}
    for s in symbols:
        net = draw(st.integers(-bound, bound))
        cost = draw(st.integers(-bound * 1000, bound * 1000))
        positions.append(Position(1, s, net=net, cost=cost))
        if draw(st.integers(0, 9)):  # now and then a symbol without a quote
            bid = draw(st.integers(1, 10**9))
            quotes[s] = Quote(s, bid, bid + draw(st.integers(0, 1000)), 0)
    currency = draw(st.sampled_from(CURRENCIES))
    rates = {c: draw(rate_values) for c in CURRENCIES}
    return positions, currency, quotes, rates


@settings(max_examples=400, deadline=None)
@given(books())
def test_unrealized_equals_the_decimal_sum_whatever_the_terms(book) -> None:  # type: ignore[no-untyped-def]
    positions, currency, quotes, rates = book
    got = outcome(
        lambda: unrealized(positions, currency, CAT.get, quotes.get, lambda a, b: rates.get(a))
    )
    assert got == outcome(lambda: reference(positions, currency, quotes, rates))


def test_unrealized_when_the_sum_is_half_a_cent_then_it_rounds_to_even() -> None:
    # BTC/USD: a unit (lot step x price step) is 0.000001 USD; 5,000 units are half a cent.
    assert CAT.get("BTC/USD").unit_value * 5_000 == Decimal("0.005")
    quote = {"BTC/USD": Quote("BTC/USD", 1_000_000, 1_000_010, 0)}.get
    one = lambda a, b: Decimal(1)  # noqa: E731
    cases = [  # net, cost -> cents
        (1, 1_000_000 - 5_000, 0),  # +0.005 -> 0.00
        (1, 1_000_000 - 15_000, 2),  # +0.015 -> 0.02
        (1, 1_000_000 - 15_001, 2),  # +0.015001 -> 0.02
        (1, 1_000_000 - 24_999, 2),  # +0.024999 -> 0.02
        (-1, -(1_000_010 - 5_000), 0),  # short: -0.005 -> -0.00
        (-1, -(1_000_010 - 15_000), -2),  # short: -0.015 -> -0.02
    ]
    for net, cost, cents in cases:
        pos = Position(1, "BTC/USD", net=net, cost=cost)
        assert unrealized([pos], "USD", CAT.get, quote, one) == cents, (net, cost)


@given(st.integers(-(10**30), 10**30), st.integers(-3, 30))
def test_round_half_even_is_decimal_quantize(value: int, places: int) -> None:
    with localcontext(prec=100):  # exact, whatever the size
        expected = int(Decimal(value).scaleb(-places).quantize(Decimal(1), ROUND_HALF_EVEN))
    assert _round_half_even(value, places) == expected
