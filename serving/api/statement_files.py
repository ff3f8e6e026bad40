"""The published statements of an account, found in the reports folder (docs/statements.md):

    HOME/reports/YYYY-MM-DD/statements/<account_id>/{summary.csv,trades.csv,positions.csv,
                                                    statement.pdf}         daily
    HOME/reports/monthly/YYYY-MM/statements/<account_id>/...               monthly
    HOME/reports/tax/YYYY/<account_id>.{csv,pdf}                           tax (yearly)

A period counts as published when its ``manifest.json`` is there: the assets write it last,
so a folder being written (or one left half-written by a failed run) is not offered. A day
withheld for open breaks has no statements folder, so it is simply absent.

Nothing here joins a caller's text to a path: the kind, the period and the file name are
each checked against a fixed shape or list first, and ``None`` answers anything else.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["daily", "monthly", "tax"]
KINDS: tuple[Kind, ...] = ("daily", "monthly", "tax")
MANIFEST = "manifest.json"
STATEMENT_FILES = ("summary.csv", "trades.csv", "positions.csv", "statement.pdf")
# The tax statement's files as the API names them, and their suffix on disk.
TAX_FILES = {"tax.csv": ".csv", "tax.pdf": ".pdf"}
FILES: dict[Kind, tuple[str, ...]] = {
    "daily": STATEMENT_FILES,
    "monthly": STATEMENT_FILES,
    "tax": tuple(TAX_FILES),
}
_SHAPES: dict[Kind, re.Pattern[str]] = {
    "daily": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    "monthly": re.compile(r"[0-9]{4}-[0-9]{2}"),
    "tax": re.compile(r"[0-9]{4}"),
}
# Within one end date the longer period comes first: the year, its December, its last day.
_SPAN: dict[Kind, int] = {"tax": 2, "monthly": 1, "daily": 0}


@dataclass(frozen=True, slots=True)
class Period:
    kind: Kind
    name: str  # YYYY-MM-DD, YYYY-MM or YYYY
    first: dt.date
    last: dt.date

    @property
    def order(self) -> tuple[dt.date, int]:
        """Its place in a newest-first listing (larger is newer)."""
        return (self.last, _SPAN[self.kind])


@dataclass(frozen=True, slots=True)
class StatementFile:
    name: str  # as the API names it
    path: Path
    size_bytes: int

    @property
    def media_type(self) -> str:
        return "application/pdf" if self.name.endswith(".pdf") else "text/csv"


def period_of(kind: str, name: str) -> Period | None:
    """The period ``name`` of ``kind``, or None when it is not one (a wrong shape, a date
    that does not exist)."""
    if kind not in _SHAPES or not _SHAPES[kind].fullmatch(name):
        return None
    try:
        if kind == "daily":
            day = dt.date.fromisoformat(name)
            return Period("daily", name, day, day)
        if kind == "monthly":
            year, month = int(name[:4]), int(name[5:])
            last = calendar.monthrange(year, month)[1]
            return Period("monthly", name, dt.date(year, month, 1), dt.date(year, month, last))
        year = int(name)
        return Period("tax", name, dt.date(year, 1, 1), dt.date(year, 12, 31))
    except ValueError:  # month 13, 30 February, year 0
        return None


def _folder(reports: Path, period: Period) -> Path:
    """The folder holding the period's manifest."""
    if period.kind == "daily":
        return reports / period.name / "statements"
    if period.kind == "monthly":
        return reports / "monthly" / period.name / "statements"
    return reports / "tax" / period.name


def _path(reports: Path, period: Period, account_id: int, name: str) -> Path:
    if period.kind == "tax":
        return reports / "tax" / period.name / f"{account_id}{TAX_FILES[name]}"
    return _folder(reports, period) / str(account_id) / name


def statement_file(
    reports: Path, period: Period, account_id: int, name: str
) -> StatementFile | None:
    """One published file of the account's statement, or None."""
    if name not in FILES[period.kind] or not (_folder(reports, period) / MANIFEST).is_file():
        return None
    path = _path(reports, period, account_id, name)
    try:
        # The components are checked; this guards against a link leading out of the folder.
        if not path.resolve().is_relative_to(reports.resolve()) or not path.is_file():
            return None
        return StatementFile(name, path, path.stat().st_size)
    except OSError:
        return None


def _periods(reports: Path) -> list[Period]:
    """Every period with a folder of its shape under ``reports``."""
    found: list[Period] = []
    for kind, parent in (
        ("daily", reports),
        ("monthly", reports / "monthly"),
        ("tax", reports / "tax"),
    ):
        try:
            names = [p.name for p in parent.iterdir() if p.is_dir()]
        except OSError:  # no reports yet, or not of that kind
            continue
        found.extend(p for n in names if (p := period_of(kind, n)) is not None)
    return found


def statements_of(reports: Path, account_id: int) -> list[tuple[Period, list[StatementFile]]]:
    """The account's published statements, newest first, each with its files."""
    out = []
    for period in sorted(_periods(reports), key=lambda p: p.order, reverse=True):
        files = [
            f
            for name in FILES[period.kind]
            if (f := statement_file(reports, period, account_id, name)) is not None
        ]
        if files:
            out.append((period, files))
    return out
