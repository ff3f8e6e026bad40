"""The reporting firm: who executes and submits the transaction reports, and from where.

Read once from the environment at the edge (``BOURSE_LEI``, ``BOURSE_REPORTING_COUNTRY``,
``BOURSE_SUBMITTING_LEI``). The default LEI is a made-up test one whose check digits are right
(ISO 17442), so a development report validates; a production deployment sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic_settings import BaseSettings, SettingsConfigDict

from trading.clients import check_lei
from trading.countries import is_country
from trading.errors import InvalidClient

# 'BOURSE00TESTLEI000' and its MOD 97-10 check digits: not issued by any LOU.
TEST_LEI: Final = "BOURSE00TESTLEI00062"
# The home Member State RTS 22 fields 8 and 17 give a client's side when no branch took the
# order; Cyprus, where most EU retail CFD brokers are authorised, by default.
DEFAULT_COUNTRY: Final = "CY"
# The firm's algorithm that takes the other side of every B-book order (RTS 22 fields 57 and
# 59 name it: the house decides and executes its side by that code, no person does).
BBOOK_ALGO: Final = "BOURSE-BBOOK"


class FirmConfigError(ValueError):
    """The firm's settings are not valid identifiers."""


@dataclass(frozen=True, slots=True)
class Firm:
    lei: str
    country: str
    submitting_lei: str
    algo: str = BBOOK_ALGO

    def __post_init__(self) -> None:
        for name in ("lei", "submitting_lei"):
            try:
                check_lei(getattr(self, name))
            except InvalidClient as exc:
                raise FirmConfigError(f"the firm's {name}: {exc}") from None
        if not is_country(self.country):
            raise FirmConfigError(f"reporting country {self.country!r} is not ISO 3166-1 alpha-2")


class FirmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOURSE_", env_file=".env", extra="ignore")

    lei: str = TEST_LEI
    reporting_country: str = DEFAULT_COUNTRY
    # An approved reporting mechanism's LEI when one submits for the firm; empty: the firm.
    submitting_lei: str = ""

    def firm(self) -> Firm:
        return Firm(self.lei, self.reporting_country, self.submitting_lei or self.lei)
