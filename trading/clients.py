"""Clients: the persons and legal entities that own accounts, checked field by field.

A client is a natural person or a legal entity. Both have a legal name, a country (ISO 3166-1
alpha-2, of residence for a person, of registration for an entity) and an e-mail address.

- A person has a date of birth (an adult: 18 or older on the day the client is created) and
  the national client identifier MiFIR transaction reports need (RTS 22, Article 6): the
  identifier of the person's nationality, written with its country prefix (``DE`` +
  the national number: 3 to 35 upper-case letters and digits in all), or, where that country
  has none, the CONCAT code: country, date of birth, the first five letters of the first
  name and of the surname, padded with ``#`` (``FR19800101JEAN#DUPON``). A CONCAT code must
  carry the person's date of birth; ``concat_id`` builds one from the names.
- An entity has a Legal Entity Identifier (ISO 17442: 18 upper-case letters or digits and two
  check digits, MOD 97-10 as an IBAN), which is also its identifier in reports, so it has no
  other national identifier and no date of birth.

E-mail addresses are checked for syntax only (a dot-atom local part of at most 64 ASCII
characters, a host name of at least two labels with an alphabetic top-level label, 254
characters in all; internationalized domains in their ``xn--`` form). The domain is
lower-cased; the local part is kept as written (it is case-sensitive in principle).

Every problem raises ``InvalidClient`` whose ``field`` detail names the field.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from trading.bounds import INT64_MAX, check_text, control_character
from trading.checksums import mod97
from trading.countries import is_country
from trading.errors import InvalidClient

NAME_MAX: Final = 200
EMAIL_MAX: Final = 254
NATIONAL_ID_MAX: Final = 35
ADULT_AGE: Final = 18

_LEI_RE: Final = re.compile(r"^[A-Z0-9]{18}[0-9]{2}$")
_CONCAT_RE: Final = re.compile(r"^([A-Z]{2})(\d{8})([A-Z#]{5})([A-Z#]{5})$")
_NATIONAL_RE: Final = re.compile(r"^([A-Z]{2})[A-Z0-9]{1,33}$")
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_RE: Final = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TLD_RE: Final = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")

# RTS 22 Article 6(3): titles and name prefixes left out of a CONCAT code.
_PREFIX_WORDS: Final = """
    atty coach dame dr fr gov honorable madam madame maid master miss monsieur mr mrs ms mx
    ofc phd pres prof rev sir am auf aus d da de del della der di do dos du im la le mac mc
    mhac mhic mic ni nic o ua ui van vom von
"""
_NAME_PREFIXES: Final = frozenset(_PREFIX_WORDS.split())


class ClientKind(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: int
    kind: ClientKind
    name: str
    country: str
    email: str
    birth_date: dt.date | None = None
    lei: str | None = None
    national_id: str | None = None


def _fail(field: str, message: str, **details: object) -> InvalidClient:
    return InvalidClient(f"{field}: {message}", field=field, **details)


def check_name(value: object) -> str:
    return check_text(value, "name", NAME_MAX, error=InvalidClient)


def check_country(value: object, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code, upper-case, officially assigned."""
    if not is_country(value):
        raise _fail(field, f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    assert isinstance(value, str)
    return value


def lei_check_digits(prefix: str) -> str:
    """The two check digits that complete an 18-character LEI prefix."""
    return f"{98 - mod97(prefix + '00'):02d}"


def check_lei(value: object) -> str:
    """An ISO 17442 LEI: 20 characters whose MOD 97-10 remainder is 1."""
    if not isinstance(value, str) or not _LEI_RE.match(value):
        raise _fail("lei", f"{value!r} is not 18 upper-case letters or digits and 2 check digits")
    if mod97(value) != 1:
        raise _fail("lei", f"{value} fails its check digits (ISO 17442, MOD 97-10)")
    return value


def check_email(value: object) -> str:
    """A syntactically valid address, its domain lower-cased."""
    if not isinstance(value, str) or len(value) > EMAIL_MAX or control_character(value):
        raise _fail("email", f"{value!r} is not an address of at most {EMAIL_MAX} characters")
    local, at, domain = value.rpartition("@")
    domain = domain.lower()
    labels = domain.split(".")
    if (
        not at
        or len(local) > 64
        or not _LOCAL_RE.match(local)
        or len(labels) < 2
        or not all(_LABEL_RE.match(label) for label in labels)
        or not _TLD_RE.match(labels[-1])
    ):
        raise _fail("email", f"{value!r} is not a valid e-mail address")
    return f"{local}@{domain}"


def check_birth_date(value: object, as_of: dt.date) -> dt.date:
    """A date of birth of an adult (18 or older on ``as_of``), not before 1900."""
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _fail("birth_date", f"{value!r} is not a date")
    if value < dt.date(1900, 1, 1) or value > as_of:
        raise _fail("birth_date", f"{value} is not a plausible date of birth")
    try:
        eighteenth = value.replace(year=value.year + ADULT_AGE)
    except ValueError:  # born on 29 February
        eighteenth = dt.date(value.year + ADULT_AGE, 3, 1)
    if eighteenth > as_of:
        raise _fail("birth_date", f"a client must be {ADULT_AGE} or older on {as_of}")
    return value


def _concat_part(name: str) -> str:
    """The first five letters of a name as RTS 22 wants them: no titles or prefixes, no
    accents, apostrophes, hyphens or spaces, upper-case, padded with '#'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = [w for w in re.split(r"[\s]+", plain.lower()) if w]
    while len(words) > 1 and re.sub(r"[^a-z]", "", words[0]) in _NAME_PREFIXES:
        words.pop(0)
    letters = re.sub(r"[^A-Z]", "", "".join(words).upper())
    return (letters[:5]).ljust(5, "#")


def concat_id(country: str, birth_date: dt.date, first_name: str, surname: str) -> str:
    """The CONCAT national client identifier of a person (RTS 22 Article 6(4)): only the
    first of several first names counts."""
    check_country(country, "national_id")
    names = first_name.split()
    first = names[0] if names else ""
    code = f"{country}{birth_date:%Y%m%d}{_concat_part(first)}{_concat_part(surname)}"
    if code.endswith("#" * 10):
        raise _fail("national_id", "a CONCAT code needs at least one letter of a name")
    return code


def check_national_id(value: object, birth_date: dt.date | None) -> str:
    """A person's national client identifier: a CONCAT code carrying ``birth_date``, or a
    national number with its country prefix (3 to 35 upper-case letters and digits)."""
    if not isinstance(value, str) or len(value) > NATIONAL_ID_MAX:
        raise _fail("national_id", f"{value!r} is not a national client identifier")
    concat = _CONCAT_RE.match(value)
    if concat is not None:
        check_country(concat[1], "national_id")
        if birth_date is None or concat[2] != f"{birth_date:%Y%m%d}":
            raise _fail("national_id", f"the CONCAT code {value} does not carry the date of birth")
        if (
            concat[3] == "#####"
            or concat[4] == "#####"
            or concat[3].startswith("#")
            or (concat[4].startswith("#"))
        ):
            raise _fail("national_id", f"the CONCAT code {value} has an empty name part")
        return value
    national = _NATIONAL_RE.match(value)
    if national is None:
        raise _fail(
            "national_id",
            f"{value!r} is neither a CONCAT code nor a country prefix and 1-33 upper-case "
            "letters or digits",
        )
    check_country(national[1], "national_id")
    return value


def check_client(client: Client, as_of: dt.date) -> Client:
    """``client`` with its e-mail domain lower-cased, if every field is valid for its kind."""
    if type(client.client_id) is not int or not 0 < client.client_id <= INT64_MAX:
        raise _fail("client_id", f"must be a positive 64-bit integer, got {client.client_id!r}")
    try:
        kind = ClientKind(client.kind)
    except ValueError:
        raise _fail("kind", f"{client.kind!r} is not one of person, entity") from None
    check_name(client.name)
    check_country(client.country)
    email = check_email(client.email)
    if kind is ClientKind.PERSON:
        if client.lei is not None:
            raise _fail("lei", "a person has no LEI")
        birth = check_birth_date(client.birth_date, as_of)
        if client.national_id is None:
            raise _fail("national_id", "a person needs a national client identifier")
        check_national_id(client.national_id, birth)
    else:
        if client.birth_date is not None:
            raise _fail("birth_date", "an entity has no date of birth")
        if client.lei is None:
            raise _fail("lei", "an entity needs its LEI")
        check_lei(client.lei)
        if client.national_id is not None:
            raise _fail("national_id", "an entity is identified by its LEI")
    return Client(
        client.client_id, kind, client.name, client.country, email,
        client.birth_date, client.lei, client.national_id,
    )  # fmt: skip
