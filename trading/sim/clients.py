"""Simulated clients: the persons and entities that own the simulation's accounts.

Drawn from the simulation's seeded ``random.Random``, so the same seed makes the same
clients. Every client passes ``trading.clients.check_client``:

- a person has a date of birth (18 to 80 years old) and a national client identifier: in a
  country that gives its residents one, its shape (``IT`` + a 16-character fiscal code,
  ``ES`` + a NIF, ``PL`` + a PESEL...: the shape only, not each country's check digits),
  elsewhere the CONCAT code built from the names (``trading.clients.concat_id``);
- an entity has an ISO 17442 LEI whose check digits are computed, its client id written into
  the entity part so that no two clients share one.

Some clients hold two accounts; entities trade as professionals.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from trading.clients import ClientKind, concat_id, lei_check_digits
from trading.commands import CreateClient

__all__ = ["SimulatedClient", "lei_for", "simulated_clients"]

ENTITY_SHARE: Final = 0.15
SECOND_ACCOUNT_SHARE: Final = 0.12
# The identifier's shape per country: D a digit, L a letter.
NATIONAL_ID_SHAPES: Final = {
    "IT": "LLLLLLDDLDDLDDDL", "ES": "DDDDDDDDL", "PL": "DDDDDDDDDDD", "SE": "DDDDDDDDDDDD",
    "DK": "DDDDDDDDDD", "BE": "DDDDDDDDDDD", "FI": "DDDDDDLDDDL",
}  # fmt: skip
CONCAT_COUNTRIES: Final = ("DE", "FR", "AT", "IE", "LU", "NL")
ENTITY_COUNTRIES: Final = ("GB", "DE", "LU", "IE", "NL", "CH", "US")
FIRST_NAMES: Final = (
    "Anna", "Jean-Luc", "Élodie", "Marco", "Zoë", "Tomás", "Sofía", "Henrik", "Aoife",
    "Matthias", "Giulia", "Pieter", "Émile", "Ingrid", "José María", "Camille", "Noah",
)  # fmt: skip
SURNAMES: Final = (
    "Müller", "de la Cruz", "O'Brien", "van der Berg", "Rossi", "Nowak", "Dupont",
    "Johansson", "Ferreira-Lima", "Schmidt", "von Bülow", "Kowalski", "Martin", "Lindqvist",
)  # fmt: skip
ENTITY_WORDS: Final = (
    "Alder", "Birch", "Cedar", "Harbour", "Meridian", "Northgate", "Quay", "Summit", "Tern",
)  # fmt: skip
ENTITY_FORMS: Final = {
    "GB": "Ltd", "DE": "GmbH", "LU": "S.A.", "IE": "DAC", "NL": "B.V.", "CH": "AG", "US": "LLC",
}  # fmt: skip
LEI_LOU: Final = "5299"  # a registrar's prefix, then the two reserved characters "00"
_OLDEST_YEARS: Final = 80
_YOUNGEST_YEARS: Final = 19  # 18 on the day the client is created, with a margin


@dataclass(frozen=True, slots=True)
class SimulatedClient:
    """A client to create and the accounts it owns, with each account's tier."""

    command: CreateClient
    account_ids: tuple[int, ...]
    tier: str


def lei_for(client_id: int, rng: random.Random) -> str:
    """A well-formed LEI unique to ``client_id``: the id in base 36 ends the entity part."""
    if client_id <= 0 or client_id >= 36**7:
        raise ValueError(f"client id {client_id} does not fit an LEI's entity part")
    alphabet = string.digits + string.ascii_uppercase
    digits = ""
    n = client_id
    while n:
        n, r = divmod(n, 36)
        digits = alphabet[r] + digits
    filler = "".join(rng.choice(alphabet) for _ in range(5))
    prefix = f"{LEI_LOU}00{filler}{digits.rjust(7, '0')}"
    return prefix + lei_check_digits(prefix)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def _shaped(rng: random.Random, shape: str) -> str:
    return "".join(rng.choice(string.digits if c == "D" else string.ascii_uppercase) for c in shape)


def _person(rng: random.Random, client_id: int, as_of: dt.date) -> CreateClient:
    first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    # In days, with leap days to spare: no 29 February to trip over.
    oldest = as_of - dt.timedelta(days=365 * _OLDEST_YEARS)
    youngest = as_of - dt.timedelta(days=366 * _YOUNGEST_YEARS)
    birth = dt.date.fromordinal(rng.randint(oldest.toordinal(), youngest.toordinal()))
    country = rng.choice((*NATIONAL_ID_SHAPES, *CONCAT_COUNTRIES))
    shape = NATIONAL_ID_SHAPES.get(country)
    national_id = (
        country + _shaped(rng, shape) if shape else concat_id(country, birth, first, surname)
    )
    email = f"{_ascii(first)}.{_ascii(surname)}.{client_id}@example.org"
    return CreateClient(client_id, ClientKind.PERSON, f"{first} {surname}", country, email,
                        birth_date=birth, national_id=national_id)  # fmt: skip


def _entity(rng: random.Random, client_id: int) -> CreateClient:
    country = rng.choice(ENTITY_COUNTRIES)
    words = rng.sample(ENTITY_WORDS, 2)
    name = f"{words[0]} {words[1]} Capital {ENTITY_FORMS[country]}"
    email = f"operations.{client_id}@{_ascii(words[0])}{_ascii(words[1])}.example.com"
    return CreateClient(client_id, ClientKind.ENTITY, name, country, email,
                        lei=lei_for(client_id, rng))  # fmt: skip


def simulated_clients(
    rng: random.Random, first_client_id: int, account_ids: Sequence[int], as_of: dt.date
) -> list[SimulatedClient]:
    """Clients from ``first_client_id`` on that own ``account_ids`` between them, in order;
    ``as_of``: the day they are created (persons are adults on it)."""
    made: list[tuple[CreateClient, list[int], str]] = []
    for account_id in account_ids:
        if made and rng.random() < SECOND_ACCOUNT_SHARE and len(made[-1][1]) < 2:
            made[-1][1].append(account_id)
            continue
        client_id = first_client_id + len(made)
        if rng.random() < ENTITY_SHARE:
            made.append((_entity(rng, client_id), [account_id], "professional"))
        else:
            tier = "professional" if rng.random() < 0.1 else "retail"
            made.append((_person(rng, client_id, as_of), [account_id], tier))
    return [SimulatedClient(cmd, tuple(ids), tier) for cmd, ids, tier in made]
