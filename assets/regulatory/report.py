"""The day's regulatory transaction report, from the warehouse mirror to its two files.

``build_regulatory_report`` reads the day's fills, builds the records, checks them (and the
built XML document) and only then writes ``transactions.xml`` and ``transactions.csv`` under
``out_dir``, each through a temporary file renamed into place: a report that fails leaves no
file of its own behind, partial or new.

auth.016 holds at least one transaction (``Tx`` is 1..n) and MiFIR has no nil report: a day
without reportable fills gets the CSV header alone and no XML (nothing to submit), and an XML
left from an earlier run of that day is removed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from assets.days import Period
from assets.regulatory import csv_out, xml_out
from assets.regulatory.firm import Firm
from assets.regulatory.records import Excluded, Transaction, build_records, load_fills
from assets.regulatory.validate import Problem, ReportInvalid, check_model, check_records
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue

XML_NAME: Final = "transactions.xml"
CSV_NAME: Final = "transactions.csv"


@dataclass(frozen=True)
class ReportResult:
    period: Period
    transactions: int
    excluded: list[Excluded] = field(default_factory=list)
    xml_path: Path | None = None
    csv_path: Path | None = None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_regulatory_report(
    wh: Warehouse, period: Period, out_dir: Path, *, firm: Firm, catalogue: Catalogue
) -> ReportResult:
    """Write the period's report under ``out_dir``; raises ReportInvalid (writing nothing)
    when a record misses or breaks a required field."""
    records, excluded = build_records(load_fills(wh, period), catalogue, firm)
    problems = check_records(records)
    if problems:
        raise ReportInvalid(problems)
    xml_text = None
    if records:
        doc = xml_out.document(records)
        broken = check_model(doc)
        if broken:
            raise ReportInvalid([_located(path, message, records) for path, message in broken])
        xml_text = xml_out.render(doc)
    csv_text = csv_out.render(records)

    out_dir.mkdir(parents=True, exist_ok=True)
    xml_path = out_dir / XML_NAME
    csv_path = out_dir / CSV_NAME
    _write(csv_path, csv_text)
    if xml_text is None:
        xml_path.unlink(missing_ok=True)
    else:
        _write(xml_path, xml_text)
    return ReportResult(
        period, len(records), excluded, xml_path if xml_text is not None else None, csv_path
    )


def _located(path: str, message: str, records: Sequence[Transaction]) -> Problem:
    """A document problem named by the exec id of the transaction it lies in."""
    prefix = "/FinInstrmRptgTxRpt/Tx["
    if path.startswith(prefix):
        index = int(path[len(prefix) : path.index("]")])
        return Problem(records[index].exec_id, path[path.index("]") + 1 :], message)
    return Problem("-", path, message)
