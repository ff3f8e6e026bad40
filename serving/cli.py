"""The ``bourse`` command line: the Typer app, with each command group from its own module.

Registration order is the order ``bourse --help`` lists the commands in.
"""

from __future__ import annotations

import typer

from serving.cli_api import admin_app, serve
from serving.cli_ml import ml_app
from serving.cli_oms import oms_app
from serving.cli_pipelines import pipelines_app
from serving.cli_psp import psp_app
from serving.cli_reports import reports_app
from serving.cli_sql import sql
from serving.cli_store import audit_app, ledger_app, outbox_app, simulate
from serving.cli_up import up

app = typer.Typer(
    help="Bourse: a trading platform back end for retail brokers.", no_args_is_help=True
)
app.command()(simulate)
app.add_typer(ledger_app, name="ledger")
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")
app.add_typer(psp_app, name="psp")
app.add_typer(oms_app, name="oms")
app.add_typer(pipelines_app, name="pipelines")
app.command()(serve)
app.add_typer(admin_app, name="admin")
app.add_typer(reports_app, name="reports")
app.command()(up)
app.command()(sql)
app.add_typer(ml_app, name="ml")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
