"""The `dlkdd` command line: one entry point, a subcommand per job."""

from __future__ import annotations

import logging

import typer

from orchestrator.cli_data import data_app, enhance_app
from orchestrator.cli_jobs import jobs, logs, submit
from orchestrator.cli_sweep import compare, demo, predict, promote, sweep
from orchestrator.cli_train import train_app

app = typer.Typer(
    help="Dual-Light Knowledge Distillation for dark-video action recognition.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(enhance_app, name="enhance")
app.add_typer(train_app, name="train")
for command in (sweep, compare, promote, predict, demo, submit, jobs, logs):
    app.command()(command)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
