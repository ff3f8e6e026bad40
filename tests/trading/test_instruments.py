"""Specification of trading.instrument and trading.catalogue: the symbol catalogue and the
price/quantity grids."""

from __future__ import annotations

import dataclasses
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.catalogue import Catalogue, CatalogueError, default_catalogue
from trading.errors import InvalidInput, InvalidPrice, InvalidQuantity, UnknownSymbol
from trading.instrument import AccountType, AssetClass, Instrument

CATALOGUE = default_catalogue()
ROUNDINGS = [
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
]


def D(text: str) -> Decimal:
    return Decimal(text)


# --- the packaged catalogue ---------------------------------------------------------------


def test_catalogue_when_default_loaded_then_has_at_least_30_symbols() -> None:
    assert len(CATALOGUE) >= 30
    assert len(CATALOGUE.symbols) == len(CATALOGUE) == len(list(CATALOGUE))


def test_catalogue_when_default_loaded_then_lists_the_seed_symbols() -> None:
    expected = {
        "EUR/USD", "GBP/USD", "USD/JPY", "USD/CHF", "AUD/USD", "USD/CAD", "NZD/USD",
        "EUR/GBP", "EUR/JPY", "GBP/JPY", "XAU/USD", "XAG/USD", "US500", "US100", "US30",
        "DE40", "UK100", "JP225", "BTC/USD", "ETH/USD", "SOL/USD", "BTC/USDT", "ETH/USDT",
        "AAPL", "MSFT", "NVDA", "TSLA", "AMZN",
    }  # fmt: skip
    assert expected <= set(CATALOGUE.symbols)
    assert {i.asset_class for i in CATALOGUE} == set(AssetClass)


def test_default_catalogue_when_called_twice_then_returns_the_same_object() -> None:
    assert default_catalogue() is default_catalogue()


@pytest.mark.parametrize("symbol", CATALOGUE.symbols)
def test_catalogue_instrument_when_loaded_then_its_grids_are_consistent(symbol: str) -> None:
    inst = CATALOGUE.get(symbol)
    assert inst.symbol == symbol
    # the tick is one step of the price grid, the lot one step of the quantity grid
    assert inst.price_from_int(inst.tick_int) == inst.tick_size
    assert inst.price_to_int(inst.tick_size) == inst.tick_int
    assert inst.qty_from_int(inst.lot_int) == inst.lot_size
    assert inst.price_scale == 10**inst.price_precision
    assert inst.qty_scale == 10**inst.qty_precision
    # the bounds are on the grid and in order
    assert 0 < inst.qty_to_int(inst.min_qty) <= inst.qty_to_int(inst.max_qty)
    # leverage: cash instruments trade at 1, margin ones at their class's limit
    if inst.account_type is AccountType.CASH:
        assert inst.max_leverage == 1
    else:
        assert inst.max_leverage == CATALOGUE.leverage_classes[inst.leverage_class] > 1
    assert inst.session in CATALOGUE.sessions
    assert CATALOGUE.session_for(symbol).name == inst.session
    if "/" in symbol:
        assert symbol == f"{inst.base}/{inst.quote}"
    assert inst.contract_size > 0
    assert inst.aliases, "every seed instrument has vendor spellings"


@pytest.mark.parametrize(
    ("symbol", "tick", "contract", "precision"),
    [
        ("EUR/USD", "0.00001", "100000", 5),
        ("USD/JPY", "0.001", "100000", 3),
        ("XAU/USD", "0.01", "100", 2),
        ("XAG/USD", "0.001", "5000", 3),
        ("US500", "0.1", "1", 1),
        ("JP225", "1", "1", 0),
        ("BTC/USD", "0.01", "1", 2),
        ("AAPL", "0.01", "1", 2),
    ],
)
def test_catalogue_instrument_when_seeded_then_has_realistic_specs(
    symbol: str, tick: str, contract: str, precision: int
) -> None:
    inst = CATALOGUE.get(symbol)
    assert inst.tick_size == D(tick)
    assert inst.contract_size == D(contract)
    assert inst.price_precision == precision


def test_catalogue_when_seeded_then_crypto_and_equities_are_cash_accounts() -> None:
    for inst in CATALOGUE:
        cash = inst.asset_class in {AssetClass.CRYPTO, AssetClass.EQUITY}
        assert (inst.account_type is AccountType.CASH) == cash, inst.symbol


def test_catalogue_when_seeded_then_fx_majors_have_leverage_30_and_fx_lot_is_001() -> None:
    eurusd = CATALOGUE.get("EUR/USD")
    assert eurusd.max_leverage == 30
    assert eurusd.lot_size == D("0.01")
    assert eurusd.qty_precision == 2
    assert CATALOGUE.get("AUD/USD").max_leverage == 20


def test_catalogue_when_seeded_then_quote_is_the_pnl_currency() -> None:
    assert CATALOGUE.get("DE40").quote == "EUR"
    assert CATALOGUE.get("UK100").quote == "GBP"
    assert CATALOGUE.get("JP225").quote == "JPY"
    assert CATALOGUE.get("BTC/USDT").quote == "USDT"
    assert CATALOGUE.get("AAPL").base == "AAPL"


# --- look-ups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("EURUSD", "EUR/USD"),
        ("EUR-USD", "EUR/USD"),
        ("eur_usd", "EUR/USD"),
        ("eur/usd", "EUR/USD"),
        ("BTCUSDT", "BTC/USDT"),
        ("btc-usdt", "BTC/USDT"),
        ("XBTUSD", "BTC/USD"),
        ("GOLD", "XAU/USD"),
        ("SPX500", "US500"),
        ("US500.cash", "US500"),
        ("GER40", "DE40"),
        ("  aapl.us  ", "AAPL"),
        ("USD/JPY", "USD/JPY"),
    ],
)
def test_resolve_when_given_an_alias_then_returns_the_canonical_instrument(
    name: str, symbol: str
) -> None:
    assert CATALOGUE.resolve(name).symbol == symbol


def test_resolve_when_given_any_alias_of_the_catalogue_then_finds_its_instrument() -> None:
    for inst in CATALOGUE:
        for alias in (inst.symbol, *inst.aliases):
            assert CATALOGUE.resolve(alias) is inst
            assert CATALOGUE.resolve(alias.lower()) is inst


def test_resolve_when_name_is_unknown_then_raises_unknown_symbol_naming_it() -> None:
    with pytest.raises(UnknownSymbol, match="FOO/BAR") as info:
        CATALOGUE.resolve("FOO/BAR")
    assert info.value.code == "unknown_symbol"
    assert info.value.to_dict()["symbol"] == "FOO/BAR"
    assert isinstance(info.value, InvalidInput)


def test_get_when_given_an_alias_then_raises_unknown_symbol() -> None:
    assert CATALOGUE.get("EUR/USD").symbol == "EUR/USD"
    with pytest.raises(UnknownSymbol, match="EURUSD"):
        CATALOGUE.get("EURUSD")
    assert "EURUSD" not in CATALOGUE
    assert "EUR/USD" in CATALOGUE


def test_session_for_when_symbol_is_unknown_then_raises_unknown_symbol() -> None:
    with pytest.raises(UnknownSymbol):
        CATALOGUE.session_for("NOPE")


# --- prices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "price", "stored"),
    [
        ("EUR/USD", "1.08765", 108765),
        ("EUR/USD", "1.0876500", 108765),  # trailing zeros are not extra precision
        ("EUR/USD", "1.1", 110000),
        ("USD/JPY", "151.234", 151234),
        ("XAU/USD", "2345.67", 234567),
        ("US500", "5123.4", 51234),
        ("JP225", "38950", 38950),
        ("JP225", "3.895E+4", 38950),
        ("BTC/USD", "97000.01", 9700001),
    ],
)
def test_price_to_int_when_on_tick_then_scales_exactly_and_round_trips(
    symbol: str, price: str, stored: int
) -> None:
    inst = CATALOGUE.get(symbol)
    assert inst.price_to_int(D(price)) == stored
    assert inst.price_from_int(stored) == D(price)
    assert inst.price_to_int(inst.price_from_int(stored)) == stored


def test_price_from_int_when_converting_then_keeps_the_instrument_precision() -> None:
    assert str(CATALOGUE.get("EUR/USD").price_from_int(110000)) == "1.10000"
    assert str(CATALOGUE.get("JP225").price_from_int(38950)) == "38950"


def test_price_to_int_when_off_tick_then_raises_invalid_price_naming_symbol_value_tick() -> None:
    with pytest.raises(InvalidPrice) as info:
        CATALOGUE.get("EUR/USD").price_to_int(D("1.087655"))
    message = str(info.value)
    assert "EUR/USD" in message
    assert "1.087655" in message
    assert "0.00001" in message
    assert info.value.code == "invalid_price"
    assert info.value.to_dict()["tick_size"] == "0.00001"


@pytest.mark.parametrize("price", ["0", "-1.08765", "-0", "NaN", "Infinity", "1E+40", "1E-99"])
def test_price_to_int_when_not_a_positive_finite_price_then_raises_invalid_price(
    price: str,
) -> None:
    with pytest.raises(InvalidPrice, match=r"EUR/USD.*tick size 0\.00001"):
        CATALOGUE.get("EUR/USD").price_to_int(D(price))


def test_price_to_int_when_given_a_float_then_raises_type_error() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        CATALOGUE.get("EUR/USD").price_to_int(1.08765)  # type: ignore[arg-type]


def test_price_to_int_when_tick_is_coarser_than_precision_then_checks_the_tick() -> None:
    inst = dataclasses.replace(CATALOGUE.get("US500"), tick_size=D("0.1"), price_precision=2)
    assert inst.tick_int == 10
    assert inst.price_to_int(D("5123.40")) == 512340
    with pytest.raises(InvalidPrice, match=r"not a multiple of the tick size 0\.1"):
        inst.price_to_int(D("5123.45"))


@pytest.mark.parametrize(
    ("price", "rounding", "expected"),
    [
        ("1.087655", ROUND_HALF_EVEN, "1.08766"),
        ("1.087645", ROUND_HALF_EVEN, "1.08764"),
        ("1.087645", ROUND_HALF_UP, "1.08765"),
        ("1.0876549", ROUND_CEILING, "1.08766"),
        ("1.0876551", ROUND_FLOOR, "1.08765"),
        ("1.08765", ROUND_UP, "1.08765"),
    ],
)
def test_round_price_to_tick_when_off_tick_then_rounds_with_the_given_mode(
    price: str, rounding: str, expected: str
) -> None:
    rounded = CATALOGUE.get("EUR/USD").round_price_to_tick(D(price), rounding)
    assert rounded == D(expected)
    assert str(rounded) == expected


def test_round_price_to_tick_when_tick_is_coarser_than_precision_then_rounds_to_tick() -> None:
    inst = dataclasses.replace(CATALOGUE.get("US500"), tick_size=D("0.1"), price_precision=2)
    assert inst.round_price_to_tick(D("5123.45"), ROUND_HALF_EVEN) == D("5123.4")
    assert inst.round_price_to_tick(D("5123.45"), ROUND_HALF_UP) == D("5123.5")
    assert inst.round_price_to_tick(D("5123.41"), ROUND_CEILING) == D("5123.5")


def test_round_price_to_tick_when_mode_is_unknown_then_raises_value_error() -> None:
    with pytest.raises(ValueError, match="rounding"):
        CATALOGUE.get("EUR/USD").round_price_to_tick(D("1.1"), "ROUND_SIDEWAYS")


# --- quantities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "qty", "stored"),
    [
        ("EUR/USD", "0.01", 1),
        ("EUR/USD", "1.5", 150),
        ("EUR/USD", "50", 5000),
        ("BTC/USDT", "0.00042", 42),
        ("AAPL", "10", 10),
        ("US500", "0.3", 3),
    ],
)
def test_qty_to_int_when_on_the_lot_grid_then_scales_exactly_and_round_trips(
    symbol: str, qty: str, stored: int
) -> None:
    inst = CATALOGUE.get(symbol)
    assert inst.qty_to_int(D(qty)) == stored
    assert inst.qty_from_int(stored) == D(qty)


@pytest.mark.parametrize(
    ("symbol", "qty", "reason"),
    [
        ("EUR/USD", "0.015", "not a multiple of the lot size 0.01"),
        ("AAPL", "1.5", "not a multiple of the lot size 1"),
        ("BTC/USDT", "0.00009", "below the minimum 0.0001"),
        ("EUR/USD", "50.01", "above the maximum 50"),
        ("EUR/USD", "0", "must be positive"),
        ("EUR/USD", "-1", "must be positive"),
        ("EUR/USD", "NaN", "not a finite number"),
    ],
)
def test_qty_to_int_when_off_grid_or_out_of_bounds_then_raises_invalid_quantity(
    symbol: str, qty: str, reason: str
) -> None:
    with pytest.raises(InvalidQuantity) as info:
        CATALOGUE.get(symbol).qty_to_int(D(qty))
    assert symbol in str(info.value)
    assert qty in str(info.value)
    assert reason in str(info.value)
    assert info.value.code == "invalid_quantity"


def test_round_qty_to_lot_when_off_grid_then_rounds_with_the_given_mode() -> None:
    inst = CATALOGUE.get("EUR/USD")
    assert inst.round_qty_to_lot(D("1.234"), ROUND_DOWN) == D("1.23")
    assert inst.round_qty_to_lot(D("1.235"), ROUND_HALF_EVEN) == D("1.24")


# --- properties -----------------------------------------------------------------------------

instruments = st.sampled_from(list(CATALOGUE))


@given(inst=instruments, ticks=st.integers(min_value=1, max_value=10**12))
def test_price_to_int_when_price_is_a_tick_multiple_then_round_trips(
    inst: Instrument, ticks: int
) -> None:
    stored = ticks * inst.tick_int
    price = inst.price_from_int(stored)
    assert price == inst.tick_size * ticks
    assert inst.price_to_int(price) == stored
    assert inst.price_from_int(inst.price_to_int(price)) == price


@given(
    inst=instruments,
    ticks=st.integers(min_value=0, max_value=10**9),
    fraction=st.integers(min_value=1, max_value=9),
)
def test_price_to_int_when_price_is_between_ticks_then_raises_invalid_price(
    inst: Instrument, ticks: int, fraction: int
) -> None:
    price = inst.tick_size * ticks + inst.tick_size * fraction / 10
    with pytest.raises(InvalidPrice):
        inst.price_to_int(price)


@given(
    inst=instruments,
    price=st.decimals(min_value=D("0.00001"), max_value=D("1000000"), places=8),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_round_price_to_tick_when_rounding_then_agrees_with_decimal_quantize(
    inst: Instrument, price: Decimal, rounding: str
) -> None:
    # every seed tick is the last decimal of the price, so quantize is the oracle
    assert inst.tick_int == 1
    expected = price.quantize(inst.tick_size, rounding=rounding)
    assert inst.round_price_to_tick(price, rounding) == expected


@given(inst=instruments, lots=st.integers(min_value=1, max_value=10**6))
def test_qty_to_int_when_qty_is_a_lot_multiple_within_bounds_then_round_trips(
    inst: Instrument, lots: int
) -> None:
    stored = lots * inst.lot_int
    qty = inst.qty_from_int(stored)
    if inst.min_qty <= qty <= inst.max_qty:
        assert inst.qty_to_int(qty) == stored
    else:
        with pytest.raises(InvalidQuantity):
            inst.qty_to_int(qty)


# --- loading and validation -----------------------------------------------------------------

VALID = """
[leverage_classes]
fx_major = 30

[sessions.fx]
tz = "America/New_York"
open_windows = [["sun 17:00", "fri 17:00"]]

[[instruments]]
symbol = "EUR/USD"
asset_class = "fx"
tick_size = "0.00001"
price_precision = 5
lot_size = "0.01"
contract_size = "100000"
min_qty = "0.01"
max_qty = "50"
leverage_class = "fx_major"
symbol_group = "fx_major"
account_type = "margin"
session = "fx"
swap_long = "-3.25"
swap_short = "0.25"
aliases = ["EURUSD"]
"""


def _with(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


def test_from_toml_when_file_is_valid_then_builds_the_catalogue() -> None:
    cat = Catalogue.from_toml(VALID)
    assert cat.symbols == ("EUR/USD",)
    assert cat.resolve("eurusd").max_leverage == 30


def test_load_when_given_a_path_then_reads_that_file(tmp_path: Path) -> None:
    path = tmp_path / "instruments.toml"
    path.write_text(VALID, encoding="utf-8")
    cat = Catalogue.load(path)
    assert len(cat) == 1
    assert str(path) in repr(cat)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('session = "fx"', 'session = "fx"\ntick = "0.1"', "unknown key(s) tick"),
        ('tick_size = "0.00001"', 'tick_size = "0.00025"', "power-of-ten step"),
        ('tick_size = "0.00001"', 'tick_size = "0.000001"', "at most price_precision = 5"),
        ('tick_size = "0.00001"', 'tick_size = "-0.00001"', "tick_size must be a positive"),
        ('max_qty = "50"', 'max_qty = "0.001"', "max_qty 0.001 is not a multiple of lot_size"),
        ('min_qty = "0.01"', 'min_qty = "0.015"', "min_qty 0.015 is not a multiple of lot_size"),
        ('min_qty = "0.01"', 'min_qty = "60"', "min_qty 60 is above max_qty 50"),
        ('session = "fx"', 'session = "nyse"', "unknown session 'nyse'"),
        ('leverage_class = "fx_major"', 'leverage_class = "x"', "unknown leverage_class 'x'"),
        ('asset_class = "fx"', 'asset_class = "bond"', "asset_class 'bond' is not one of"),
        ('account_type = "margin"', 'account_type = "isa"', "account_type 'isa'"),
        ('symbol_group = "fx_major"\n', "", "missing key(s) symbol_group"),
        ('tick_size = "0.00001"', 'tick_size = "abc"', "is not a decimal number"),
        ('tick_size = "0.00001"', "tick_size = true", "must be a decimal string"),
        ('aliases = ["EURUSD"]', 'aliases = ["EURUSD", "eurusd"]', "clashes with alias"),
        ('aliases = ["EURUSD"]', 'aliases = ["eur/usd"]', "clashes with symbol"),
        ('symbol = "EUR/USD"', 'symbol = "eur/usd"', "upper-case"),
        ("fx_major = 30", "fx_major = 0", "must be an integer ≥ 1"),
        ('tz = "America/New_York"', 'tz = "Mars/Olympus"', "unknown time zone"),
        ('"sun 17:00"', '"sunday 17:00"', "not a weekly time"),
        ("[leverage_classes]", "colour = 1\n[leverage_classes]", "unknown key(s) colour"),
        ("[leverage_classes]", "[leverage_classes", "not valid TOML"),
        ('swap_long = "-3.25"\n', "", "needs swap_long and swap_short"),
        ('swap_long = "-3.25"', 'swap_long = "-300"', "within ±100"),
        ('swap_long = "-3.25"', 'swap_long = "-3.1234567"', "more than 6 decimals"),
        ('swap_long = "-3.25"', 'swap_long = "x"', "is not a decimal number"),
        ('swap_long = "-3.25"', 'swap_long = "-3.25"\nday_count = 364', "360 or 365"),
        ('swap_long = "-3.25"', 'swap_long = "-3.25"\nday_count = "360"', "360 or 365"),
    ],
)
def test_from_toml_when_file_is_malformed_then_raises_a_clear_catalogue_error(
    old: str, new: str, message: str
) -> None:
    with pytest.raises(CatalogueError) as info:
        Catalogue.from_toml(_with(old, new), source="test.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("test.toml: ")


def test_from_toml_when_a_symbol_is_listed_twice_then_raises_catalogue_error() -> None:
    second = VALID[VALID.index("[[instruments]]") :].replace('aliases = ["EURUSD"]', "")
    with pytest.raises(CatalogueError, match="EUR/USD is listed twice"):
        Catalogue.from_toml(VALID + second)


def test_from_toml_when_a_cash_instrument_then_its_leverage_is_1() -> None:
    text = _with('account_type = "margin"', 'account_type = "cash"')
    text = text.replace('swap_long = "-3.25"\nswap_short = "0.25"\n', "")
    cat = Catalogue.from_toml(text)
    assert cat.get("EUR/USD").max_leverage == 1
    assert (cat.get("EUR/USD").swap_long, cat.get("EUR/USD").swap_short) == (0, 0)


def test_from_toml_when_a_cash_instrument_has_a_swap_rate_then_raises_catalogue_error() -> None:
    with pytest.raises(CatalogueError, match="fully paid: swap_long must be 0"):
        Catalogue.from_toml(_with('account_type = "margin"', 'account_type = "cash"'))


def test_from_toml_when_swaps_given_then_reads_them_exactly_with_the_class_day_count() -> None:
    inst = Catalogue.from_toml(VALID).get("EUR/USD")
    assert (inst.swap_long, inst.swap_short, inst.day_count) == (D("-3.25"), D("0.25"), 360)
    text = _with('swap_long = "-3.25"', 'swap_long = "-3.25"\nday_count = 365')
    assert Catalogue.from_toml(text).get("EUR/USD").day_count == 365


def test_swap_rate_when_long_short_or_flat_then_picks_the_side_rate() -> None:
    inst = Catalogue.from_toml(VALID).get("EUR/USD")
    assert inst.swap_rate(5) == D("-3.25")
    assert inst.swap_rate(-5) == D("0.25")
    assert inst.swap_rate(0) == 0


def test_catalogue_when_seeded_then_every_margin_instrument_has_swaps_and_day_count() -> None:
    for inst in CATALOGUE:
        if inst.account_type is AccountType.CASH:
            assert (inst.swap_long, inst.swap_short) == (0, 0), inst.symbol
            continue
        # The house's markup makes a long and a short never both earn.
        assert inst.swap_long + inst.swap_short < 0, inst.symbol
        assert inst.day_count == (360 if inst.asset_class in ("fx", "metal") else 365)
    assert CATALOGUE.get("USD/JPY").swap_long > 0 > CATALOGUE.get("USD/JPY").swap_short
    assert CATALOGUE.get("US500").swap_long < 0 < CATALOGUE.get("US500").swap_short


def test_from_toml_when_decimal_is_a_bare_toml_float_then_reads_it_exactly() -> None:
    cat = Catalogue.from_toml(_with('tick_size = "0.00001"', "tick_size = 0.00001"))
    assert cat.get("EUR/USD").tick_size == D("0.00001")


def test_from_toml_when_symbol_is_not_a_pair_then_quote_is_required() -> None:
    text = _with(
        'symbol = "EUR/USD"\nasset_class = "fx"', 'symbol = "US500"\nasset_class = "index"'
    )
    with pytest.raises(CatalogueError, match="quote"):
        Catalogue.from_toml(text)
    cat = Catalogue.from_toml(text.replace('symbol = "US500"', 'symbol = "US500"\nquote = "USD"'))
    assert (cat.get("US500").base, cat.get("US500").quote) == ("US500", "USD")


def test_instrument_when_built_directly_with_a_bad_grid_then_raises_value_error() -> None:
    with pytest.raises(ValueError, match="min_qty 2 is above max_qty 1"):
        dataclasses.replace(CATALOGUE.get("AAPL"), min_qty=D("2"), max_qty=D("1"))
    with pytest.raises(ValueError, match="cash instrument has max_leverage 1"):
        dataclasses.replace(CATALOGUE.get("AAPL"), max_leverage=5)
