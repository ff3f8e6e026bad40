"""The identifiers the regulatory report rests on: the firm's LEI (ISO 17442 check digits),
read from the environment, and the catalogue's ISINs, CFI codes and names."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from assets.regulatory.firm import TEST_LEI, Firm, FirmConfigError, FirmSettings
from trading.catalogue import Catalogue, CatalogueError, default_catalogue
from trading.errors import ConfigError
from trading.instrument import AccountType, AssetClass, Instrument, is_isin


def _mod97(text: str) -> int:
    # ISO 7064 MOD 97-10 the long way: letters as 10..35, the whole number mod 97.
    return int("".join(str(int(c, 36)) for c in text)) % 97


def test_default_lei_when_checked_then_its_check_digits_hold() -> None:
    assert re.fullmatch(r"[A-Z0-9]{18}[0-9]{2}", TEST_LEI)
    assert _mod97(TEST_LEI) == 1
    assert FirmSettings().firm().lei == TEST_LEI


def test_firm_when_the_lei_or_country_is_wrong_then_refused() -> None:
    wrong = TEST_LEI[:-2] + f"{(int(TEST_LEI[-2:]) + 1) % 100:02d}"
    assert _mod97(wrong) != 1
    with pytest.raises(FirmConfigError, match=r"lei: .*check digits"):
        Firm(wrong, "CY", TEST_LEI)
    with pytest.raises(FirmConfigError, match="submitting_lei"):
        Firm(TEST_LEI, "CY", "NOT-A-LEI")
    with pytest.raises(FirmConfigError, match="reporting country"):
        Firm(TEST_LEI, "XX", TEST_LEI)


def test_firm_settings_when_the_environment_names_a_lei_then_it_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOURSE_LEI", "529900T8BM49AURSDO55")
    monkeypatch.setenv("BOURSE_REPORTING_COUNTRY", "IE")
    firm = FirmSettings().firm()
    assert (firm.lei, firm.country, firm.submitting_lei) == (
        "529900T8BM49AURSDO55", "IE", "529900T8BM49AURSDO55",
    )  # fmt: skip
    monkeypatch.setenv("BOURSE_LEI", "529900T8BM49AURSDO56")
    with pytest.raises(FirmConfigError):
        FirmSettings().firm()


def test_is_isin_when_a_character_changes_then_the_check_digit_catches_it() -> None:
    assert is_isin("US0378331005")
    assert not is_isin("US0378331006")  # the check digit
    assert not is_isin("US0378331015")  # one digit off
    assert not is_isin("us0378331005") and not is_isin("US037833100") and not is_isin(None)


def test_catalogue_when_loaded_then_every_reported_instrument_is_identified() -> None:
    cat = default_catalogue()
    for inst in cat:
        if inst.asset_class is AssetClass.CRYPTO:
            assert not inst.reportable, inst.symbol
            continue
        assert inst.reportable and inst.cfi is not None and inst.full_name, inst.symbol
        assert (inst.isin is not None) == (inst.asset_class is AssetClass.EQUITY), inst.symbol
    assert cat.get("AAPL").isin == "US0378331005" and cat.get("AAPL").cfi == "ESVUFR"
    assert cat.get("DE40").underlying_isin == "DE0008469008"
    assert cat.get("EUR/USD").cfi == "JFTXCC" and cat.get("EUR/USD").underlying is None


def _entry(**extra: str) -> str:
    lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
    return f"""
[leverage_classes]
equities = 5
[sessions.always]
tz = "UTC"
always_open = true
[[instruments]]
symbol = "ABC"
asset_class = "equity"
quote = "USD"
tick_size = "0.01"
price_precision = 2
lot_size = "1"
contract_size = "1"
min_qty = "1"
max_qty = "10"
leverage_class = "equities"
symbol_group = "equities"
account_type = "cash"
session = "always"
{lines}
"""


def test_catalogue_when_an_identifier_is_malformed_then_the_entry_is_refused() -> None:
    assert Catalogue.from_toml(_entry(isin='"US0378331005"')).get("ABC").isin == "US0378331005"
    assert Catalogue.from_toml(_entry()).get("ABC").reportable is True
    for extra, message in [
        ({"isin": '"US0378331006"'}, "isin 'US0378331006' is not an ISIN"),
        ({"cfi": '"ESVUF"'}, "cfi 'ESVUF' is not a CFI code"),
        ({"underlying": '"' + "x" * 26 + '"'}, "underlying must be"),
        ({"reportable": '"no"'}, "reportable must be true or false"),
    ]:
        with pytest.raises(CatalogueError, match=re.escape(message)):
            Catalogue.from_toml(_entry(**extra))


def test_instrument_when_built_without_identifiers_then_defaults_keep_it_valid() -> None:
    inst = Instrument(
        "XYZ", AssetClass.EQUITY, "XYZ", "USD", Decimal("0.01"), Decimal(1), Decimal(1),
        Decimal(1), Decimal(10), 2, "equities", 1, "equities", AccountType.CASH, "always",
    )  # fmt: skip
    assert (inst.isin, inst.cfi, inst.full_name, inst.reportable) == (None, None, None, True)
    with pytest.raises(ConfigError, match="full_name"):
        Instrument(
            "XYZ", AssetClass.EQUITY, "XYZ", "USD", Decimal("0.01"), Decimal(1), Decimal(1),
            Decimal(1), Decimal(10), 2, "equities", 1, "equities", AccountType.CASH, "always",
            full_name=" ",
        )  # fmt: skip
