"""The ``[[lp]]`` model: a documented table parses; every mistake names the LP and the key."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from trading.errors import ConfigError
from trading.orders import OrderType, TimeInForce
from trading.venues.fix.config import lp_config, lp_configs
from trading.venues.fix.settings import initiator_settings

EXAMPLE = """
[[lp]]
name = "lp1"
host = "127.0.0.1"
port = 5001
begin_string = "FIX.4.4"
sender_comp_id = "BOURSE"
target_comp_id = "LP1"
heartbeat_s = 30
reconnect_s = 5
session_start = "00:00:00"
session_end = "00:00:00"
order_types = ["limit", "market"]
tifs = ["day", "gtc", "ioc", "fok"]
mic = "XOFF"
status_request = "order"
priority = 1
market_data = false
"""


def _table(**over: Any) -> dict[str, Any]:
    t: dict[str, Any] = tomllib.loads(EXAMPLE)["lp"][0]
    t.update(over)
    return t


def test_example_when_loaded_then_every_key_is_read() -> None:
    (lp,) = lp_configs(tomllib.loads(EXAMPLE)["lp"])
    assert (lp.name, lp.port, lp.begin_string, lp.mic, lp.priority) == (
        "lp1", 5001, "FIX.4.4", "XOFF", 1,
    )  # fmt: skip
    assert lp.order_types == (OrderType.LIMIT, OrderType.MARKET)
    assert lp.tifs == (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
    assert lp.execution_venue == "XOFF"


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"prot": 5001}, ["'lp1'", "prot", "unknown key"]),
        ({"port": "5001"}, ["'lp1'", "port"]),
        ({"port": 70000}, ["port"]),
        ({"begin_string": "FIX.5.0"}, ["begin_string"]),
        ({"order_types": ["limit", "iceberg"]}, ["order_types", "iceberg"]),
        ({"tifs": ["day", "day"]}, ["tifs", "twice"]),
        ({"session_start": "25:00:00"}, ["session_start", "HH:MM:SS"]),
        ({"sender_comp_id": "BOURSE 1"}, ["sender_comp_id"]),
        ({"name": "LP One"}, ["name"]),
        ({"status_request": "mass", "begin_string": "FIX.4.2"}, ["mass", "FIX.4.4"]),
        ({"heartbeat_s": 0}, ["heartbeat_s"]),
    ],
)
def test_lp_table_when_a_key_is_wrong_then_the_error_names_it(
    over: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        lp_config(_table(**over))
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_two_lps_when_they_share_a_name_or_a_session_then_refused() -> None:
    with pytest.raises(ConfigError, match="name 'lp1' is used twice"):
        lp_configs([_table(), _table(port=5002)])
    with pytest.raises(ConfigError, match=r"session FIX\.4\.4/BOURSE/LP1 is used twice"):
        lp_configs([_table(), _table(name="lp2", port=5002)])


def test_session_settings_when_made_then_they_carry_the_lps_keys(tmp_path: Any) -> None:
    lp = lp_config(_table(heartbeat_s=15, reconnect_s=3, reset_on_logon=True,
                          session_start="06:00:00", session_end="22:00:00"))  # fmt: skip
    text = initiator_settings(lp, tmp_path)
    for line in ["BeginString=FIX.4.4", "SenderCompID=BOURSE", "TargetCompID=LP1",
                 "SocketConnectPort=5001", "HeartBtInt=15", "ReconnectInterval=3",
                 "StartTime=06:00:00", "EndTime=22:00:00", "ResetOnLogon=Y",
                 "UseDataDictionary=Y", f"FileStorePath={tmp_path}/venues/fix/lp1/store",
                 f"FileLogPath={tmp_path}/venues/fix/lp1/log"]:  # fmt: skip
        assert line in text.splitlines(), line
    dictionary = next(x for x in text.splitlines() if x.startswith("DataDictionary="))
    assert dictionary.endswith("FIX44.xml")
