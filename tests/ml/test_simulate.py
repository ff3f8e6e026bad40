"""The scenario simulator: deterministic, in the file contract, each normal kind present,
and each fraud labelled exactly as issue 12 defines it (docs/fraud.md, §simulator)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from ml.events import COLUMNS, SCHEMA, check_frame
from ml.simulate import FRAUD_KINDS, NORMAL_KINDS, Member, simulate, simulate_world
from trading.catalogue import default_catalogue

HOUR = 3_600_000_000_000
DAY = 24 * HOUR
MIX = dict.fromkeys(FRAUD_KINDS, 0.02)


@pytest.fixture(scope="module")
def world() -> tuple[pl.DataFrame, tuple[Member, ...]]:
    return simulate_world(11, 600, 21, mix=MIX)


@pytest.fixture(scope="module")
def frame(world: tuple[pl.DataFrame, tuple[Member, ...]]) -> pl.DataFrame:
    return world[0]


@pytest.fixture(scope="module")
def cast(world: tuple[pl.DataFrame, tuple[Member, ...]]) -> dict[int, Member]:
    return {m.client_id: m for m in world[1]}


def _bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def _labelled(frame: pl.DataFrame, scenario: str) -> pl.DataFrame:
    return frame.filter((pl.col("label") == 1) & (pl.col("scenario") == scenario))


def _links(frame: pl.DataFrame) -> dict[int, set[str]]:
    """Each client's devices and addresses on logins, as 'd:...' and 'i:...' keys."""
    out: dict[int, set[str]] = defaultdict(set)
    for cid, dev, ip in (
        frame.filter(pl.col("type") == "login").select("client_id", "device_id", "ip").iter_rows()
    ):
        out[cid].update((f"d:{dev}", f"i:{ip}"))
    return out


# --- determinism, schema, order ---------------------------------------------------------------


def test_simulate_when_same_seed_then_same_bytes_and_other_seed_differs() -> None:
    a = simulate(5, 150, 5)
    b = simulate(5, 150, 5)
    c = simulate(6, 150, 5)
    assert _bytes(a) == _bytes(b)
    assert _bytes(a) != _bytes(c)


def test_simulate_when_hash_seed_differs_then_same_bytes() -> None:
    # set or dict order must decide nothing: two interpreters with other string hashes
    script = (
        "import hashlib, io, sys; from ml.simulate import simulate; b = io.BytesIO(); "
        "simulate(8, 120, 4).write_parquet(b); print(hashlib.sha256(b.getvalue()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1
    assert digests == {hashlib.sha256(_bytes(simulate(8, 120, 4))).hexdigest()}


def test_simulate_then_frame_follows_the_contract(frame: pl.DataFrame) -> None:
    assert frame.columns == list(COLUMNS)
    assert dict(frame.schema) == SCHEMA
    check_frame(frame)
    assert set(frame["type"].unique()) == {
        "login", "deposit", "withdrawal", "destination_added", "order", "fill"
    }  # fmt: skip
    logins = frame.filter(pl.col("type") == "login")
    assert logins["account_id"].null_count() == logins.height
    for col in ("device_id", "ip", "country", "success"):
        assert logins[col].null_count() == 0
    assert all(d.startswith("dev-") for d in logins["device_id"])
    assert all(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", ip) for ip in logins["ip"])
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in logins["country"])
    others = frame.filter(pl.col("type") != "login")
    assert others["account_id"].null_count() == 0
    money = frame.filter(pl.col("type").is_in(["deposit", "withdrawal"]))
    assert all(re.fullmatch(r"\d+\.\d{2}", a) and Decimal(a) > 0 for a in money["amount"])
    assert set(money["currency"]) <= {"USD", "EUR"}
    assert set(money["method"]) <= {"card", "bank", "ewallet", "crypto"}
    deposits = frame.filter(pl.col("type") == "deposit")
    assert all(fp.startswith("fp-") for fp in deposits["instrument_id"])
    dests = frame.filter(pl.col("type").is_in(["withdrawal", "destination_added"]))
    assert all(d.startswith("dst-") for d in dests["destination_id"])
    assert dests["method"].null_count() == 0
    trades = frame.filter(pl.col("type").is_in(["order", "fill"]))
    catalogue = default_catalogue()
    assert set(trades["symbol"]) <= set(catalogue.symbols)
    assert set(trades["side"]) == {"buy", "sell"}
    for symbol, qty, price in trades.select("symbol", "qty", "price").iter_rows():
        inst = catalogue.get(symbol)
        assert inst.min_qty <= Decimal(qty) <= inst.max_qty
        assert Decimal(price) > 0 and Decimal(price) % inst.tick_size == 0


def test_simulate_then_each_client_logs_in_before_acting_and_fills_follow_orders(
    frame: pl.DataFrame,
) -> None:
    assert (frame["ts_ns"].diff().drop_nulls() >= 0).all()
    logged_in: set[int] = set()
    open_orders: dict[tuple[int, str, str, str], int] = defaultdict(int)
    destinations: dict[int, set[str]] = defaultdict(set)
    for type_, cid, success, symbol, side, qty, dest in frame.select(
        "type", "client_id", "success", "symbol", "side", "qty", "destination_id"
    ).iter_rows():
        if type_ == "login":
            logged_in.add(cid) if success else None
            continue
        if type_ != "fill":  # a resting limit order may fill while the client is away
            assert cid in logged_in, f"client {cid} acted ({type_}) before logging in"
        if type_ == "order":
            open_orders[(cid, symbol, side, qty)] += 1
        elif type_ == "fill":
            assert open_orders[(cid, symbol, side, qty)] > 0, "a fill without its order"
            open_orders[(cid, symbol, side, qty)] -= 1
        elif type_ == "destination_added":
            destinations[cid].add(dest)
        elif type_ == "withdrawal":
            assert dest in destinations[cid], "a withdrawal to a destination never added"


# --- normal clients -----------------------------------------------------------------------------


def test_simulate_then_every_normal_kind_and_hard_negative_is_present(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    active = set(frame["client_id"])
    normal = [m for m in cast.values() if m.fraud is None and m.client_id in active]
    assert {m.kind for m in normal} == set(NORMAL_KINDS)
    traits = {t for m in normal for t in m.traits}
    assert traits >= {
        "late_joiner", "nat", "new_device", "typos", "big_withdrawal", "trade_then_withdraw"
    }  # fmt: skip
    assert set(frame["scenario"]) == {"normal", *FRAUD_KINDS}


def _per_client(frame: pl.DataFrame, type_: str) -> dict[int, int]:
    counts = frame.filter(pl.col("type") == type_).group_by("client_id").len()
    return dict(counts.iter_rows())


def test_simulate_then_scalpers_trade_far_more_than_investors_and_dormant_clients(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    orders = _per_client(frame, "order")

    def median(kind: str) -> float:
        values = sorted(
            orders.get(c, 0) for c, m in cast.items() if m.kind == kind and m.fraud is None
        )
        return values[len(values) // 2]

    assert median("scalper") > 10 * median("swing") > 0
    assert median("swing") > median("investor") >= median("dormant")
    assert median("dormant") <= 2


def test_simulate_then_travellers_log_in_abroad_on_their_usual_device(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    logins = frame.filter((pl.col("type") == "login") & pl.col("success"))
    travelled = 0
    for cid, group in logins.group_by("client_id"):
        m = cast[int(cid[0])]  # type: ignore[call-overload]
        if m.kind != "traveller" or m.fraud or {"new_device", "shared_device"} & set(m.traits):
            continue
        assert group["device_id"].n_unique() == 1
        travelled += group["country"].n_unique() > 1
    assert travelled >= 5


def test_simulate_then_households_share_an_address_on_separate_devices(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    logins = frame.filter(pl.col("type") == "login")
    nat = logins.filter(
        pl.col("client_id").is_in([c for c, m in cast.items() if "nat" in m.traits])
    )
    shared = nat.group_by("ip").agg(
        pl.col("client_id").n_unique().alias("clients"), pl.col("device_id").n_unique()
    )
    shared = shared.filter(pl.col("clients") >= 2)
    assert shared.height >= 3
    assert (shared["device_id"] >= shared["clients"]).all()
    # a family tablet: a device that more than one normal client logs in on
    normal = logins.filter(
        pl.col("client_id").is_in([c for c, m in cast.items() if m.fraud is None])
    )
    tablets = normal.group_by("device_id").agg(pl.col("client_id").unique())
    tablets = tablets.filter(pl.col("client_id").list.len() > 1)
    assert tablets.height >= 1
    for members in tablets["client_id"]:
        assert len({cast[c].group for c in members}) == 1, "one household's tablet"


def test_simulate_then_second_cards_and_new_devices_and_typos_look_as_they_should(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    normal = {c for c, m in cast.items() if m.fraud is None}
    cards = (
        frame.filter((pl.col("type") == "deposit") & (pl.col("method") == "card"))
        .group_by("client_id")
        .agg(pl.col("instrument_id").n_unique().alias("cards"))
    )
    by_client = dict(cards.iter_rows())
    second = [c for c in normal if cast[c].kind == "second_card"]
    assert sum(by_client.get(c, 0) == 2 for c in second) >= len(second) // 3
    assert all(by_client.get(c, 0) <= 2 for c in normal)
    logins = frame.filter(pl.col("type") == "login")
    devices = dict(logins.group_by("client_id").agg(pl.col("device_id").n_unique()).iter_rows())
    countries = dict(logins.group_by("client_id").agg(pl.col("country").n_unique()).iter_rows())
    movers = [
        c
        for c in normal
        if "new_device" in cast[c].traits
        and "shared_device" not in cast[c].traits
        and cast[c].kind != "traveller"
    ]
    assert all(devices[c] <= 2 and countries[c] == 1 for c in movers)
    # a quiet investor may not have logged in on the old device during the period
    assert sum(devices[c] == 2 for c in movers) > len(movers) // 2
    failed = logins.filter(~pl.col("success"))
    assert failed.height > 0
    assert set(failed["scenario"]) <= {"normal", *FRAUD_KINDS}


def test_simulate_then_no_normal_client_looks_like_a_card_tester(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    deposits = frame.filter((pl.col("type") == "deposit") & (pl.col("method") == "card"))
    owners = deposits.group_by("instrument_id").agg(pl.col("client_id").n_unique().alias("n"))
    shared = set(owners.filter(pl.col("n") > 1)["instrument_id"])
    normal = deposits.filter(
        pl.col("client_id").is_in([c for c, m in cast.items() if m.fraud is None])
    )
    assert not set(normal["instrument_id"]) & shared
    for _, group in normal.group_by("client_id"):
        rows = group.select("ts_ns", "instrument_id").rows()
        for ts, _ in rows:
            within = {fp for t, fp in rows if ts <= t < ts + DAY}
            assert len(within) < 3


# --- frauds -----------------------------------------------------------------------------------


def test_ato_then_labels_the_new_device_login_the_destination_and_the_withdrawal(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    victims = sorted(set(frame.filter(pl.col("scenario") == "ato")["client_id"]))
    assert len(victims) == round(0.02 * 600)
    for cid in victims:
        assert cast[cid].fraud == "ato"
        rows = frame.filter(pl.col("client_id") == cid)
        labelled = rows.filter(pl.col("label") == 1)
        assert labelled["type"].to_list() == ["login", "destination_added", "withdrawal"]
        login, added, out = labelled.iter_rows(named=True)
        before = rows.filter(
            (pl.col("ts_ns") < login["ts_ns"]) & (pl.col("type") == "login") & pl.col("success")
        )
        assert before.height > 0, "an ATO victim was a client before the takeover"
        assert login["device_id"] not in set(before["device_id"])
        assert login["country"] not in set(before["country"])
        failed = rows.filter(
            (pl.col("scenario") == "ato") & (pl.col("type") == "login") & ~pl.col("success")
        )
        assert (failed["ts_ns"] < login["ts_ns"]).all()
        assert (failed["label"] == 0).all()
        assert added["destination_id"] == out["destination_id"]
        assert out["method"] == added["method"]
        assert login["ts_ns"] < added["ts_ns"] < out["ts_ns"] <= login["ts_ns"] + 9 * HOUR
        assert (
            rows.filter(
                (pl.col("destination_id") == out["destination_id"]) & (pl.col("label") == 0)
            ).height
            == 0
        )


def test_cycling_then_labels_withdrawals_of_about_a_recent_deposit_to_another_kind(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    labelled = _labelled(frame, "cycling")
    assert labelled.height >= round(0.02 * 600)
    assert set(labelled["type"]) == {"withdrawal"}
    deposits = frame.filter((pl.col("type") == "deposit") & (pl.col("scenario") == "cycling"))
    for row in labelled.iter_rows(named=True):
        assert cast[row["client_id"]].fraud == "cycling"
        out = Decimal(row["amount"])
        matches = [
            d
            for d in deposits.filter(pl.col("client_id") == row["client_id"]).iter_rows(named=True)
            if row["ts_ns"] - 2 * DAY <= d["ts_ns"] < row["ts_ns"]
            and d["method"] != row["method"]
            and Decimal("0.8") * Decimal(d["amount"]) <= out <= Decimal(d["amount"])
        ]
        assert matches, f"withdrawal {row} has no deposit of another kind within 2 days"
        between = frame.filter(
            (pl.col("client_id") == row["client_id"])
            & (pl.col("type") == "order")
            & pl.col("ts_ns").is_between(matches[-1]["ts_ns"], row["ts_ns"])
        )
        assert between.height <= 12  # little trading, against hundreds for a scalper


def test_card_testing_then_labels_bursts_of_three_cards_and_cards_shared_by_clients(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    labelled = _labelled(frame, "card_testing")
    assert set(labelled["type"]) == {"deposit"} and set(labelled["method"]) == {"card"}
    owners = (
        frame.filter(pl.col("type") == "deposit")
        .group_by("instrument_id")
        .agg(pl.col("client_id").n_unique().alias("n"))
    )
    shared = set(owners.filter(pl.col("n") > 1)["instrument_id"])
    bursts = shared_seen = 0
    for row in labelled.iter_rows(named=True):
        assert cast[row["client_id"]].fraud == "card_testing"
        if row["instrument_id"] in shared:
            shared_seen += 1
            continue
        mine = labelled.filter(
            (pl.col("client_id") == row["client_id"])
            & (pl.col("ts_ns") - row["ts_ns"]).abs().le(DAY)
            & ~pl.col("instrument_id").is_in(list(shared))
        )
        span = mine["ts_ns"].max() - mine["ts_ns"].min()  # type: ignore[operator]
        assert mine["instrument_id"].n_unique() >= 3 and span < DAY
        bursts += 1
    assert bursts > 0 and shared_seen > 0, "both variants of card testing"
    every_shared = frame.filter(pl.col("instrument_id").is_in(list(shared)))
    assert (every_shared["label"] == 1).all()


def test_bonus_abuse_then_labels_withdrawals_of_new_clients_sharing_a_device_or_address(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    labelled = _labelled(frame, "bonus_abuse")
    assert set(labelled["type"]) == {"withdrawal"}
    links = _links(frame)
    ring = {c for c, m in cast.items() if m.fraud == "bonus_abuse"}
    for cid in set(labelled["client_id"]):
        assert cid in ring
        assert any(links[cid] & links[other] for other in ring - {cid})
        rows = frame.filter(pl.col("client_id") == cid)
        assert set(rows["scenario"]) == {"bonus_abuse"}, "a new client: its whole life"
        deposits = rows.filter(pl.col("type") == "deposit")
        assert deposits.height == 1 and Decimal(deposits["amount"][0]) <= 320
        assert rows.filter(pl.col("type") == "order").height <= 8


def test_wash_trading_then_labels_opposite_fills_of_linked_clients_within_seconds(
    frame: pl.DataFrame, cast: dict[int, Member]
) -> None:
    labelled = _labelled(frame, "wash_trading")
    assert set(labelled["type"]) == {"fill"} and labelled.height >= 2 * round(0.02 * 600)
    links = _links(frame)
    rows = labelled.select("ts_ns", "client_id", "symbol", "side", "qty").rows()
    for ts, cid, symbol, side, qty in rows:
        assert cast[cid].fraud == "wash_trading"
        partners = [
            other
            for t, other, s, sd, q in rows
            if other != cid and s == symbol and sd != side and q == qty and abs(t - ts) < 15e9
        ]
        assert partners, "a wash fill without its opposite fill"
        assert all(links[cid] & links[p] for p in partners), "wash partners are linked"


# --- mix and share ----------------------------------------------------------------------------


def test_simulate_when_default_mix_then_labelled_events_are_well_under_one_percent() -> None:
    frame = simulate(3, 1_000, 30)
    share = frame["label"].sum() / frame.height
    assert 0 < share < 0.005
    assert set(frame.filter(pl.col("label") == 1)["scenario"]) == set(FRAUD_KINDS)


def test_simulate_when_mix_changes_then_the_kinds_follow() -> None:
    only = simulate(4, 300, 10, mix={"ato": 0.05})
    assert set(only["scenario"]) == {"normal", "ato"}
    assert only.filter(pl.col("scenario") == "ato")["client_id"].n_unique() == 15


def test_simulate_when_bad_arguments_then_a_specific_error() -> None:
    with pytest.raises(ValueError, match="unknown fraud kind"):
        simulate(1, 100, 5, mix={"phishing": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        simulate(1, 100, 5, mix={"ato": -0.1})
    with pytest.raises(ValueError, match="too few"):
        simulate(1, 4, 5)
    with pytest.raises(ValueError, match="days"):
        simulate(1, 100, 0)


def test_simulate_when_start_given_then_events_begin_that_day() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    frame = simulate(2, 100, 3, start=start)
    first = frame["ts_ns"].min()
    assert isinstance(first, int)
    begin = int(start.timestamp()) * 1_000_000_000
    assert begin <= first < begin + DAY
