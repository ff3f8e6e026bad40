"""A statement as a PDF a client would be glad to receive (reportlab, A4, one or two pages
for an ordinary account; long trade lists continue with their header repeated).

The PDF shows the same strings as the CSV files (``csv_out``), so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from assets.statements.compute import Statement
from assets.statements.csv_out import position_rows, summary_rows, trade_rows
from trading.catalogue import Catalogue
from trading.money import format_minor

INK = colors.HexColor("#1f2937")
ACCENT = colors.HexColor("#0f4c81")
RULE = colors.HexColor("#d1d5db")
STRIPE = colors.HexColor("#f3f6fa")

_STYLES = getSampleStyleSheet()
TITLE = ParagraphStyle(
    "title", parent=_STYLES["Title"], textColor=ACCENT, alignment=0, fontSize=18, spaceAfter=2
)
BROKER = ParagraphStyle(
    "broker", parent=_STYLES["Normal"], textColor=ACCENT, fontSize=11, fontName="Helvetica-Bold"
)
BODY = ParagraphStyle("body", parent=_STYLES["Normal"], textColor=INK, fontSize=9, leading=12)
HEADING = ParagraphStyle(
    "heading",
    parent=_STYLES["Heading2"],
    textColor=ACCENT,
    fontSize=12,
    spaceBefore=8,
    spaceAfter=4,
)
SMALL = ParagraphStyle(
    "small", parent=BODY, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#4b5563")
)
RIGHT = ParagraphStyle("right", parent=BODY, alignment=TA_RIGHT)


def table_style(numeric_from: int, rows: int) -> TableStyle:
    commands: list[Any] = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    commands += [("BACKGROUND", (0, r), (-1, r), STRIPE) for r in range(2, rows, 2)]
    return TableStyle(commands)


def data_table(
    header: list[str], rows: list[list[str]], widths: list[float], numeric_from: int
) -> Table:
    table = Table([header, *rows], colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(table_style(numeric_from, len(rows) + 1))
    return table


def header_block(broker: str, title: str, facts: list[tuple[str, str]]) -> list[Any]:
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    left = [Paragraph(broker, BROKER), Paragraph(title, TITLE)]
    details = [[Paragraph(f"<b>{k}</b>", BODY), Paragraph(v, BODY)] for k, v in facts]
    details.append([Paragraph("<b>Generated</b>", BODY), Paragraph(generated, BODY)])
    facts_table = Table(details, colWidths=[32 * mm, 70 * mm], hAlign="RIGHT")
    facts_table.setStyle(
        TableStyle(
            [("TOPPADDING", (0, 0), (-1, -1), 0.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5)]
        )
    )
    top = Table([[left, facts_table]], colWidths=[78 * mm, 104 * mm])
    top.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 1.2, ACCENT),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return [top, Spacer(1, 4 * mm)]


def footer(broker: str, note: str) -> Any:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.HexColor("#6b7280"))
        canvas.drawString(14 * mm, 10 * mm, f"{broker} — {note}")
        canvas.drawRightString(A4[0] - 14 * mm, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    return draw


def build(path: Path, story: list[Any], broker: str, note: str, title: str) -> None:
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=title,
        author=broker,
        invariant=True,
    )
    draw = footer(broker, note)
    doc.build(story, onFirstPage=draw, onLaterPages=draw)


_SUMMARY_LABELS = (
    "Opening balance",
    "Deposits",
    "Withdrawals",
    "Realized P&L",
    "Commission",
    "Financing",
    "Closing balance",
    "Unrealized P&L",
    "Equity",
)


def write_statement_pdf(st: Statement, catalogue: Catalogue, path: Path, broker: str) -> None:
    period = st.period
    kind = "Daily statement" if period.first == period.last else "Monthly statement"
    facts = [
        ("Account", str(st.account_id)),
        ("Client", st.client_name or "—"),
        (
            "Period",
            f"{period.first.isoformat()} to {period.last.isoformat()}"
            if period.first != period.last
            else period.first.isoformat(),
        ),
        ("Currency", st.currency),
    ]
    story = header_block(broker, kind, facts)
    story.append(Paragraph("Summary", HEADING))
    summaries = summary_rows(st)
    # One column per currency, one row per figure: reads down like a bank statement.
    grid = [[label, *(row[i + 1] for row in summaries)] for i, label in enumerate(_SUMMARY_LABELS)]
    # 182 mm between the margins: the label column, then the currencies share the rest.
    width = min(40 * mm, 132 * mm / max(len(summaries), 1))
    summary = data_table(
        ["", *(row[0] for row in summaries)], grid, [50 * mm] + [width] * len(summaries), 1
    )
    summary.setStyle(
        TableStyle(
            [
                ("FONT", (0, 7), (-1, 7), "Helvetica-Bold", 8),
                ("FONT", (0, 9), (-1, 9), "Helvetica-Bold", 8),
                ("LINEABOVE", (0, 7), (-1, 7), 0.8, INK),
            ]
        )
    )
    story.append(summary)
    others = [(s.currency, k, v) for s in st.summaries for k, v in s.other]
    if others:
        story.append(
            Paragraph(
                "Other ledger movements included in the balances: "
                + "; ".join(f"{k} {v} ({c} minor units)" for c, k, v in others),
                SMALL,
            )
        )
    story.append(Paragraph("Trades", HEADING))
    trades = trade_rows(st, catalogue)
    if trades:
        rows = [
            [r[0][:19].replace("T", " "), r[1][-14:], r[3], r[4], r[5], r[6], r[7], r[8]]
            for r in trades
        ]
        story.append(
            data_table(
                [
                    "Time (UTC)",
                    "Execution",
                    "Symbol",
                    "Side",
                    "Lots",
                    "Price",
                    "Commission",
                    "Realized P&L",
                ],
                rows,
                [29 * mm, 27 * mm, 20 * mm, 11 * mm, 17 * mm, 24 * mm, 25 * mm, 29 * mm],
                4,
            )
        )
        total_comm = sum(t.commission for t in st.trades)
        total_real = sum(t.realized for t in st.trades)
        story.append(
            Paragraph(
                f"{len(trades)} trades; commission {format_minor(total_comm, st.currency)}, "
                f"realized P&amp;L {format_minor(total_real, st.currency)} {st.currency}.",
                SMALL,
            )
        )
    else:
        story.append(Paragraph("No trades in this period.", BODY))
    story.append(Paragraph("Open positions at the end of the period", HEADING))
    positions = position_rows(st, catalogue)
    if positions:
        rows = [[r[0], r[1], r[2], r[3] or "no mark", r[4], r[5] or "—"] for r in positions]
        story.append(
            data_table(
                [
                    "Symbol",
                    "Lots",
                    "Average price",
                    "Mark",
                    "Mark date",
                    f"Unrealized ({st.currency})",
                ],
                rows,
                [26 * mm, 22 * mm, 32 * mm, 28 * mm, 26 * mm, 40 * mm],
                1,
            )
        )
    else:
        story.append(Paragraph("No open positions.", BODY))
    if st.unmarked:
        story.append(
            Paragraph(
                f"No end-of-day mark for {', '.join(st.unmarked)}: their unrealized P&amp;L "
                "is not included in the totals.",
                SMALL,
            )
        )
    own = next(s for s in st.summaries if s.currency == st.currency)
    story.append(Spacer(1, 4 * mm))
    story.append(
        Paragraph(
            f"<b>Totals ({st.currency}):</b> closing balance "
            f"{format_minor(own.closing, st.currency)}, "
            f"unrealized P&amp;L {format_minor(own.unrealized, st.currency)}, equity "
            f"{format_minor(own.equity, st.currency)}.",
            BODY,
        )
    )
    story.append(
        Paragraph(
            "Balances are as of the 17:00 New York cut-off closing each trading day. "
            "Open positions are valued at the end-of-day marks, longs at the bid and "
            "shorts at the ask, converted "
            "to the account currency at the marks' mid prices.",
            SMALL,
        )
    )
    build(path, story, broker, f"account {st.account_id}, {period.label}", kind)
