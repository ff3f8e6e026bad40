"""The routing rules (trading.routing): strict parsing, matching, split determinism, and the
venues file that carries them (trading.venues.config)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from trading.catalogue import default_catalogue
from trading.orders import OrderType
from trading.routing import Book, IfNoLp, Routing, RoutingError, parse_routing, split_point
from trading.venues.config import VenuesFileError, load_venues, parse_venues

ROOT = Path(__file__).resolve().parents[2]

RULES = """
default_route = "rest"

[[route]]
name = "vip-fx"
account_groups = ["vip", "account:7"]
symbols = ["EUR/USD", "group:metals"]
order_types = ["limit"]
min_lots = "1"
max_lots = "50"
book = "a"
lps = ["lp1", "lp2"]
if_no_lp = "reject"
markup = "0.00002"

[[route]]
name = "half"
symbols = ["EUR/USD"]
book = "split"
a_share = "0.5"
lps = ["lp2"]

[[route]]
name = "rest"
book = "b"
"""


def rules() -> Routing:
    return parse_routing(tomllib.loads(RULES))


def decide(r: Routing, *, order_id: int = 1, account_id: int = 1, tier: str = "vip",
           symbol: str = "EUR/USD", group: str = "fx_major",
           order_type: OrderType = OrderType.LIMIT, lots: str = "1"):  # type: ignore[no-untyped-def]  # fmt: skip
    return r.decide(order_id=order_id, account_id=account_id, tier=tier, symbol=symbol,
                    symbol_group=group, order_type=order_type, lots=Decimal(lots))  # fmt: skip


def test_decide_when_every_filter_matches_then_first_route_with_its_lps_and_markup() -> None:
    d = decide(rules())
    assert (d.route, d.book, d.lps, d.if_no_lp, d.markup) == (
        "vip-fx", Book.A, ("lp1", "lp2"), IfNoLp.REJECT, Decimal("0.00002"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tier": "retail"}, "half-or-rest"),  # account group
        ({"tier": "retail", "account_id": 7}, "vip-fx"),  # account:<id>
        ({"symbol": "XAU/USD", "group": "metals"}, "vip-fx"),  # group:<symbol group>
        ({"symbol": "GBP/USD"}, "rest"),  # symbol
        ({"order_type": OrderType.MARKET}, "half-or-rest"),  # order type
        ({"lots": "0.99"}, "half-or-rest"),  # below min_lots
        ({"lots": "50"}, "vip-fx"),  # max_lots is inclusive
        ({"lots": "50.01"}, "half-or-rest"),
    ],
)
def test_decide_when_one_filter_fails_then_the_next_route(change: dict, expected: str) -> None:  # type: ignore[type-arg]
    d = decide(rules(), **change)
    if expected == "half-or-rest":
        # EUR/USD falls to the split route: A or B, but that route either way.
        assert d.route == "half"
    else:
        assert d.route == expected


def test_decide_when_no_route_matches_then_the_default_route() -> None:
    d = decide(rules(), symbol="BTC/USD", group="crypto")
    assert (d.route, d.book, d.lps, d.markup) == ("rest", Book.B, (), Decimal(0))


def test_decide_when_no_default_route_given_then_bbook() -> None:
    r = parse_routing({})
    d = decide(r)
    assert (d.route, d.book) == ("bbook", Book.B)


def test_split_when_decided_twice_then_same_book_and_share_near_a_share() -> None:
    first, second = rules(), rules()  # a restart: a fresh parse of the same file
    ids = range(1, 4001)
    a1 = [decide(first, order_id=i, tier="x").book for i in ids]
    a2 = [decide(second, order_id=i, tier="x").book for i in ids]
    assert a1 == a2
    share = sum(b is Book.A for b in a1) / len(a1)
    # 4,000 draws of a fair coin: 0.5 +- 0.04 is over 5 standard deviations.
    assert 0.46 < share < 0.54
    # The book follows the hash point alone.
    for i, b in zip(ids, a1, strict=True):
        assert (b is Book.A) == (split_point("half", i) < Decimal("0.5"))


@pytest.mark.parametrize(("share", "books"), [("0", {Book.B}), ("1", {Book.A})])
def test_split_when_share_is_0_or_1_then_all_one_book(share: str, books: set[Book]) -> None:
    r = parse_routing(tomllib.loads(
        f'[[route]]\nname = "s"\nbook = "split"\na_share = "{share}"\nlps = ["lp"]\n'
    ))  # fmt: skip
    assert {decide(r, order_id=i).book for i in range(1, 300)} == books


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ('name = "x"\nbook = "c"', "route 'x': book: one of a, b, split, not 'c'"),
        ('name = "x"\nbook = "b"\ncolour = 1', "route 'x': colour: unknown key"),
        ('book = "b"', "route #1: name: required"),
        ('name = "x"\nbook = "a"', "route 'x': lps: required for book = 'a'"),
        ('name = "x"\nbook = "b"\nlps = ["lp"]', "route 'x': lps: a B-book route sends to no LP"),
        ('name = "x"\nbook = "split"\nlps = ["lp"]', "route 'x': a_share: required"),
        (
            'name = "x"\nbook = "split"\na_share = "1.5"\nlps = ["lp"]',
            "route 'x': a_share: 1.5 must be between 0 and 1",
        ),
        ('name = "x"\nbook = "b"\nmin_lots = 1', "route 'x': min_lots: a decimal string"),
        (
            'name = "x"\nbook = "b"\nmin_lots = "2"\nmax_lots = "1"',
            "route 'x': max_lots: 1 is below min_lots 2",
        ),
        ('name = "x"\nbook = "b"\nmarkup = "abc"', "route 'x': markup: 'abc' is not a decimal"),
        ('name = "x"\nbook = "b"\norder_types = ["limit", "iceberg"]', "route 'x': order_types:"),
        (
            'name = "x"\nbook = "b"\naccount_groups = ["account:seven"]',
            "route 'x': account_groups: 'account:seven'",
        ),
        (
            'name = "x"\nbook = "a"\nlps = ["lp", "lp"]',
            "route 'x': lps: ['lp', 'lp'] names an LP twice",
        ),
        ('name = "x"\nbook = "a"\nlps = ["lp"]\nif_no_lp = "hope"', "route 'x': if_no_lp: one of"),
    ],
)
def test_parse_when_a_rule_is_wrong_then_error_names_rule_and_key(route: str, message: str) -> None:
    with pytest.raises(RoutingError) as err:
        parse_routing(tomllib.loads(f"[[route]]\n{route}\n"))
    assert message in str(err.value)


def test_parse_when_default_route_unknown_or_names_repeat_then_error() -> None:
    with pytest.raises(RoutingError, match="default_route: 'nope' is no"):
        parse_routing(tomllib.loads('default_route = "nope"'))
    with pytest.raises(RoutingError, match="route 'x': name: used by an earlier"):
        parse_routing(tomllib.loads('[[route]]\nname="x"\nbook="b"\n[[route]]\nname="x"\nbook="b"'))


def test_resolved_when_symbols_are_aliases_then_catalogue_spelling() -> None:
    text = '[[route]]\nname="x"\nbook="a"\nlps=["lp"]\nsymbols=["eurusd"]'
    r = parse_routing(tomllib.loads(text))
    resolved = r.resolved(default_catalogue(), ["lp"])
    assert resolved.routes[0].symbols == frozenset({"EUR/USD"})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('symbols = ["NOPE"]', "route 'x': symbols: 'NOPE' is not in the catalogue"),
        ('symbols = ["group:stamps"]', "route 'x': symbols: group:stamps is no symbol group"),
        (
            'symbols = ["group:fx_major"]\nmarkup = "0.00002"',
            "route 'x': markup: 0.00002 is not a whole number of USD/JPY's ticks",
        ),
        ('lps = ["lp", "other"]', "route 'x': lps: 'other' is no [[lp]]"),
    ],
)
def test_resolved_when_rule_does_not_fit_catalogue_then_error(extra: str, message: str) -> None:
    text = f'[[route]]\nname="x"\nbook="a"\n{extra}\n'
    if "lps" not in extra:
        text += 'lps = ["lp"]\n'
    with pytest.raises(RoutingError) as err:
        parse_routing(tomllib.loads(text)).resolved(default_catalogue(), ["lp"])
    assert message in str(err.value)


def test_venues_example_when_loaded_then_lps_and_routes_resolve() -> None:
    venues = load_venues(ROOT / "venues.example.toml")
    names = [lp.name for lp in venues.lps]
    assert names and venues.routes.routes
    venues.routes.resolved(default_catalogue(), names)  # raises if it does not fit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = ", "not TOML"),
        ("colour = 1", "unknown top-level key 'colour'"),
        ('[[lp]]\nname = "lp1"\nport = 5001', "lp 'lp1': sender_comp_id: Field required"),
        (
            '[[route]]\nname = "r"\nbook = "a"\nlps = ["ghost"]',
            "route 'r': lps: 'ghost' is no [[lp]]",
        ),
    ],
)
def test_venues_file_when_wrong_then_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(VenuesFileError) as err:
        parse_venues(text, source="v.toml")
    assert str(err.value).startswith("v.toml: ") and message in str(err.value)


def test_venues_file_when_missing_then_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(VenuesFileError, match=r"nope\.toml: cannot read the venues file"):
        load_venues(tmp_path / "nope.toml")
