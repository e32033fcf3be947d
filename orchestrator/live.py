"""The live view of a sweep's students: one rich table of trials (status, epoch, T, alpha,
enhancement, seed, validation top-1) with elapsed and estimated remaining time, redrawn as
Tune reports. It replaces Tune's own status tables on the console (those go to the log)."""

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
        if _live is not None:
            _live.update(self.table())

    def table(self) -> Table:
        done = sum(r["status"] in ("done", "error") for r in self.rows.values())
        elapsed = time.time() - self.started
        remaining = f", ~{_clock(elapsed / done * (self.total - done))} left" if done else ""
        table = Table(title=f"{self.title}: {done}/{self.total} trials done, "
                            f"{_clock(elapsed)} elapsed{remaining}")  # fmt: skip
        for column in ("trial", "status", "epoch", "enh", "T", "alpha", "seed", "val top-1"):
            table.add_column(column, justify="left" if column in ("trial", "status") else "right")
        for trial_id, r in self.rows.items():
            val = "" if r["val_top1"] is None else f"{r['val_top1']:.3f}"
            t, alpha = f"{r['temperature']:.3g}", f"{r['alpha']:.3g}"
            table.add_row(trial_id, r["status"], str(r["epoch"]), r["enhancement"], t, alpha,
                          str(r["seed"]), val)  # fmt: skip
        return table


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
