"""The positions flow's configuration: the example file, defaults, and every refusal."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.positions.config import MarginLevels, PositionsConfig, load_config
from trading.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "pipelines" / "positions" / "positions.example.toml"


def _load(tmp_path: Path, text: str) -> PositionsConfig:
    path = tmp_path / "positions.toml"
    path.write_text(text)
    return load_config(path)


def test_example_when_loaded_then_every_section_is_read() -> None:
    cfg = load_config(EXAMPLE)

    assert cfg.levels["margin"] == MarginLevels(Decimal(100), Decimal(50))
    assert cfg.levels["cash"] == MarginLevels(Decimal(100), Decimal(50))
    assert cfg.house_currency == "USD"
    assert cfg.symbol_limits["EUR/USD"] == Decimal(5_000_000)
    assert cfg.symbol_limits["US500"] == Decimal(1_000_000)
    assert cfg.currency_limits["EUR"] == Decimal(10_000_000)
    assert cfg.snapshot_s == 60.0
    assert cfg.close_timeout_s == 30.0
    assert cfg.close_timeout_ns == 30_000_000_000


def test_no_file_when_loaded_then_defaults() -> None:
    cfg = load_config(None)

    assert cfg.levels_for("margin") == MarginLevels(Decimal(100), Decimal(50))
    assert cfg.levels_for("cash") == MarginLevels(Decimal(100), Decimal(50))
    assert (cfg.house_currency, cfg.symbol_limits, cfg.currency_limits) == ("USD", {}, {})
    assert (cfg.snapshot_s, cfg.close_timeout_s) == (60.0, 30.0)


def test_partial_levels_when_loaded_then_the_rest_keeps_its_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[levels.margin]\ncall = 120\n[flow]\nsnapshot_s = 0.5\n")

    assert cfg.levels["margin"] == MarginLevels(Decimal(120), Decimal(50))
    assert cfg.levels["cash"] == MarginLevels()
    assert cfg.snapshot_s == 0.5


def test_alias_when_loaded_then_stored_under_its_symbol(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[limits.symbols]\nEURUSD = "1000.50"\n')

    assert cfg.symbol_limits == {"EUR/USD": Decimal("1000.50")}


def test_config_when_pickled_then_equal() -> None:
    cfg = load_config(EXAMPLE)

    assert pickle.loads(pickle.dumps(cfg)) == cfg


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[levels.margin]\ncall = 100.0\n", "levels.margin.call"),
        ('[limits.symbols]\n"EUR/USD" = 5e6\n', "limits.symbols.EUR/USD"),
        ('[limits.currencies]\nEUR = "ten"\n', "limits.currencies.EUR"),
        ('[limits.currencies]\nEUR = "0"\n', "limits.currencies.EUR"),
        ('[limits.currencies]\nEUR = "-5"\n', "limits.currencies.EUR"),
        ('[limits.currencies]\nXYZ = "5"\n', "limits.currencies.XYZ"),
        ('[limits.symbols]\n"FOO/BAR" = "5"\n', "limits.symbols.FOO/BAR"),
        ('[limits.symbols]\n"EUR/USD" = "5"\nEURUSD = "6"\n', "limits.symbols.EURUSD"),
        ("[limits]\nsymbol = {}\n", "limits.symbol"),
        ('[house]\ncurrency = "XYZ"\n', "house.currency"),
        ('[house]\ncurrency = "USD"\ncolour = "red"\n', "house.colour"),
        ('[levels.margin]\ncall = "50"\nstop_out = "50"\n', "levels.margin"),
        ('[levels.margin]\ncall = "40"\n', "levels.margin"),
        ('[levels.margin]\nstop_out = "0"\n', "levels.margin"),
        ('[levels.margin]\nstop = "40"\n', "levels.margin.stop"),
        ('[levels.pro]\ncall = "100"\n', "levels.pro"),
        ("[levels.margin]\ncall = true\n", "levels.margin.call"),
        ("[flow]\nsnapshot_s = 0\n", "flow.snapshot_s"),
        ('[flow]\nclose_timeout_s = "30"\n', "flow.close_timeout_s"),
        ("[flow]\nsnapshot = 1\n", "flow.snapshot"),
        ('[levls.margin]\ncall = "100"\n', "levls"),
        ("levels = 3\n", "levels"),
    ],
)
def test_bad_file_when_loaded_then_config_error_names_the_key(
    tmp_path: Path, text: str, named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)

    assert named in str(info.value)


def test_not_toml_when_loaded_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "[levels\n")


def test_missing_file_when_loaded_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_levels_when_built_directly_then_checked() -> None:
    with pytest.raises(ConfigError, match="0 < stop_out < call"):
        MarginLevels(call=Decimal(50), stop_out=Decimal(60))
    with pytest.raises(ConfigError, match="call"):
        MarginLevels(call=100, stop_out=Decimal(50))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"house\.currency"):
        PositionsConfig(house_currency="ABC")
    with pytest.raises(ConfigError, match=r"limits\.symbols\.EUR/USD"):
        PositionsConfig(symbol_limits={"EUR/USD": Decimal(0)})
