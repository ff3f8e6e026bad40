"""Specification of trading.clients: each field of a client checked, with a specific error."""

from __future__ import annotations

import datetime as dt

import pytest

from trading.clients import (
    Client,
    ClientKind,
    check_client,
    check_email,
    check_lei,
    check_national_id,
    concat_id,
    lei_check_digits,
)
from trading.countries import COUNTRIES, is_country
from trading.errors import InvalidClient, InvalidInput

TODAY = dt.date(2026, 11, 26)
PERSON = Client(1, ClientKind.PERSON, "Jean Dupont", "FR", "Jean.Dupont@Example.FR",
                birth_date=dt.date(1980, 1, 1), national_id="FR19800101JEAN#DUPON")  # fmt: skip
ENTITY = Client(2, ClientKind.ENTITY, "GLEIF", "CH", "info@gleif.org", lei="506700GE1G29325QX363")


def _field(exc: pytest.ExceptionInfo[InvalidClient]) -> object:
    return exc.value.to_dict()["field"]


def test_countries_when_loaded_then_hold_the_249_assigned_codes() -> None:
    assert len(COUNTRIES) == 249
    assert is_country("DE") and is_country("JP")
    assert not is_country("UK") and not is_country("XK") and not is_country("de")


def test_check_client_when_person_is_valid_then_lower_cases_the_email_domain_only() -> None:
    client = check_client(PERSON, TODAY)
    assert client.email == "Jean.Dupont@example.fr"
    assert client.kind is ClientKind.PERSON


def test_check_client_when_entity_is_valid_then_returns_it() -> None:
    assert check_client(ENTITY, TODAY).lei == "506700GE1G29325QX363"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "Jean\nDupont"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"country": "XX"}, "country"),
        ({"country": "fr"}, "country"),
        ({"email": "jean@localhost"}, "email"),
        ({"email": "jean@@example.fr"}, "email"),
        ({"email": "jean..d@example.fr"}, "email"),
        ({"email": "jean@exa_mple.fr"}, "email"),
        ({"email": "jean@example.fr\n"}, "email"),
        ({"email": "a" * 65 + "@example.fr"}, "email"),
        ({"birth_date": None}, "birth_date"),
        ({"birth_date": dt.date(2010, 1, 1)}, "birth_date"),
        ({"birth_date": dt.date(1899, 12, 31)}, "birth_date"),
        ({"national_id": None}, "national_id"),
        ({"national_id": "FR19810101JEAN#DUPON"}, "national_id"),  # not the date of birth
        ({"national_id": "QQ12345"}, "national_id"),
        ({"national_id": "fr123"}, "national_id"),
        ({"lei": "506700GE1G29325QX363"}, "lei"),
        ({"client_id": 0}, "client_id"),
        ({"client_id": 2**63}, "client_id"),
    ],
)
def test_check_client_when_a_person_field_is_bad_then_names_the_field(
    changes: dict[str, object], field: str
) -> None:
    bad = Client(**{**{f: getattr(PERSON, f) for f in Client.__slots__}, **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidClient) as info:
        check_client(bad, TODAY)
    assert _field(info) == field
    assert info.value.code == "invalid_client"
    assert isinstance(info.value, InvalidInput)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lei": None}, "lei"),
        ({"lei": "506700GE1G29325QX364"}, "lei"),  # a check digit off
        ({"lei": "506700ge1g29325qx363"}, "lei"),
        ({"birth_date": dt.date(1980, 1, 1)}, "birth_date"),
        ({"national_id": "CH123"}, "national_id"),
    ],
)
def test_check_client_when_an_entity_field_is_bad_then_names_the_field(
    changes: dict[str, object], field: str
) -> None:
    bad = Client(**{**{f: getattr(ENTITY, f) for f in Client.__slots__}, **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidClient) as info:
        check_client(bad, TODAY)
    assert _field(info) == field


def test_check_birth_date_when_eighteen_today_then_accepted_and_a_day_younger_refused() -> None:
    adult = Client(**{**{f: getattr(PERSON, f) for f in Client.__slots__},  # type: ignore[arg-type]
                      "birth_date": dt.date(2008, 11, 26), "national_id": "DE123456"})  # fmt: skip
    assert check_client(adult, TODAY).birth_date == dt.date(2008, 11, 26)
    minor = Client(**{**{f: getattr(adult, f) for f in Client.__slots__},  # type: ignore[arg-type]
                      "birth_date": dt.date(2008, 11, 27)})  # fmt: skip
    with pytest.raises(InvalidClient, match="18 or older"):
        check_client(minor, TODAY)


def test_lei_when_check_digits_computed_then_the_code_validates() -> None:
    prefix = "5493001KJTIIGC8Y1R"
    assert check_lei(prefix + lei_check_digits(prefix)) == "5493001KJTIIGC8Y1R12"
    for known in ("506700GE1G29325QX363", "529900T8BM49AURSDO55"):
        assert check_lei(known) == known


def test_concat_id_when_names_have_prefixes_accents_and_punctuation_then_follows_rts22() -> None:
    born = dt.date(1980, 1, 1)
    assert concat_id("IE", born, "John", "O'Brien") == "IE19800101JOHN#OBRIE"
    assert concat_id("FR", born, "Jean-Pierre Marie", "de la Fontaine") == "FR19800101JEANPFONTA"
    assert concat_id("DE", born, "Ludwig", "van der Rohe") == "DE19800101LUDWIROHE#"
    assert concat_id("ES", born, "José", "Núñez") == "ES19800101JOSE#NUNEZ"
    with pytest.raises(InvalidClient):
        concat_id("ZZ", born, "A", "B")


def test_check_national_id_when_concat_or_prefixed_then_accepted() -> None:
    born = dt.date(1980, 1, 1)
    assert check_national_id("IE19800101JOHN#OBRIE", born) == "IE19800101JOHN#OBRIE"
    assert check_national_id("IT" + "RSSMRA80A01H501U", born).startswith("IT")
    with pytest.raises(InvalidClient, match="empty name part"):
        check_national_id("IE19800101#####OBRIE", born)


def test_check_email_when_idn_in_punycode_then_accepted() -> None:
    assert check_email("a.b+tag@XN--BCHER-KVA.example") == "a.b+tag@xn--bcher-kva.example"
