"""The live view of a sweep: the teachers' and controls' table (status, epoch of their
budget, validation top-1), then the students' (status, epoch, T, alpha, enhancement, seed,
validation top-1), each with elapsed and estimated remaining time. The students' is redrawn
as Tune reports and replaces Tune's own status tables on the console (those go to the log)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray import tune
from rich.live import Live
from rich.table import Table

from orchestrator.progress import console

_live: Live | None = None  # the driver's live display while a board is shown


@contextmanager
def shown() -> Iterator[None]:
    """Shows the boards updated inside the block (one live region, redrawn 2x a second);
    off a terminal only its last state is printed."""
    global _live
    with Live(console=console, refresh_per_second=2, redirect_stdout=False,
              redirect_stderr=False, transient=False) as live:  # fmt: skip
        _live = live
        try:
            yield
        finally:
            _live = None


class TrialBoard(tune.Callback):
    """Rows of plain data (Tune pickles its callbacks with the experiment and restores them
    on `--resume`); the display itself is the module's `_live`, never pickled."""

    def __init__(self, title: str, total: int, default_seed: int) -> None:
        self.title, self.total, self.default_seed = title, total, default_seed
        self.rows: dict[str, dict[str, Any]] = {}
        self.started = self.drawn = time.time()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._row(trial)["status"] = "running"
        self._show()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = self._row(trial)
        row["epoch"] = int(result.get("epoch", row["epoch"]))
        if "val_top1" in result:
            row["val_top1"] = float(result["val_top1"])
        self._show()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._row(trial)["status"] = "done"
        self._show()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._row(trial)["status"] = "error"
        self._show()

    def on_step(self, iteration, trials, **info) -> None:
        """Tune steps many times a second; the elapsed time needs redrawing once a second."""
        if time.time() - self.drawn >= 1:
            self._show()

    def _row(self, trial) -> dict[str, Any]:
        c = trial.config
        return self.rows.setdefault(trial.trial_id, {
            "status": "pending", "epoch": 0, "val_top1": None, "enhancement": c["enhancement"],
            "temperature": float(c["temperature"]), "alpha": float(c["alpha"]),
            "seed": int(c.get("seed", self.default_seed)),
        })  # fmt: skip

    def _show(self) -> None:
        self.drawn = time.time()
        show(self.table())

    def table(self) -> Table:
        table = _titled(f"{self.title}: ", self.rows.values(), self.total, self.started, "trials")
        for column in ("trial", "status", "epoch", "enh", "T", "alpha", "seed", "val top-1"):
            table.add_column(column, justify="left" if column in ("trial", "status") else "right")
        for trial_id, r in self.rows.items():
            t, alpha = f"{r['temperature']:.3g}", f"{r['alpha']:.3g}"
            table.add_row(trial_id, r["status"], str(r["epoch"]), r["enhancement"], t, alpha,
                          str(r["seed"]), _score(r["val_top1"]))  # fmt: skip
        return table


class JobBoard:
    """The teachers and controls a sweep trains before its students, one row each: its
    status and, from the job's newest epoch checkpoint (`jobs.progress`), epochs done of
    its budget and the last validation top-1."""

    def __init__(self, labels: dict[str, str], epochs: dict[str, int]) -> None:
        self.rows = {k: {"label": labels[k], "status": "queued", "epoch": 0, "of": epochs[k],
                         "val_top1": None, "since": None} for k in labels}  # fmt: skip
        self.started = time.time()

    def update(self, key: str, status: str, progress: dict[str, float] | None = None) -> None:
        """A job's new status (`starting`, `training`, `done`, `error`) and progress."""
        row = self.rows[key]
        row["since"] = row["since"] or time.time()
        row["status"] = status
        row.update(progress or {})
        show(self.table())

    def table(self) -> Table:
        table = _titled("", self.rows.values(), len(self.rows), self.started, "reference jobs")
        for column in ("job", "status", "epoch", "val top-1", "time"):
            table.add_column(column, justify="left" if column in ("job", "status") else "right")
        for r in self.rows.values():
            took = _clock(time.time() - r["since"]) if r["since"] else ""
            table.add_row(r["label"], r["status"], f"{int(r['epoch'])}/{r['of']}",
                          _score(r["val_top1"]), took)  # fmt: skip
        return table


def show(table: Table) -> None:
    """Draws `table` in the live region, when one is shown."""
    if _live is not None:
        _live.update(table)


def _titled(prefix: str, rows, total: int, started: float, what: str) -> Table:
    """A table titled with how many of `total` rows are done (or failed), the time elapsed
    and, once one is done, an estimate of the time left."""
    done = sum(r["status"] in ("done", "error") for r in rows)
    elapsed = time.time() - started
    remaining = f", ~{_clock(elapsed / done * (total - done))} left" if done else ""
    return Table(title=f"{prefix}{done}/{total} {what} done, {_clock(elapsed)} elapsed{remaining}")


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
