"""A Tune callback that records every student trial as a nested MLflow run, live.

It runs in the driver (where Tune's controller lives), so MLflow has a single writer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from ray import tune

from trainers import export

LOGGED_PREFIXES = ("train_", "val_", "test_", "best_", "lr", "bad_clips", "epoch_seconds")


def _metrics(result: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in result.items()
        if k.startswith(LOGGED_PREFIXES) and isinstance(v, int | float) and math.isfinite(v)
    }


class StudentTracker(tune.Callback):
    def __init__(
        self, uri: str, experiment_id: str, parent_run_id: str, sweep: str,
        teachers: dict[str, dict[str, str]], storage: str,
    ) -> None:  # fmt: skip
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id
        self.sweep, self.teachers, self.storage = sweep, teachers, storage
        self.runs: dict[str, str] = {}

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def run_id(self, trial) -> str:
        """The trial's MLflow run: found again after a resume, created otherwise."""
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            f"tags.`dlkdd.trial_id` = '{trial.trial_id}' and "
            f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'",
        )
        if found:
            self.runs[trial.trial_id] = found[0].info.run_id
            return self.runs[trial.trial_id]
        cfg = trial.config
        alpha = float(cfg["alpha"])
        enhancement = cfg["enhancement"] if alpha > 0 else "none"
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "dlkdd.role": "student",
            "dlkdd.sweep": self.sweep,
            "dlkdd.trial_id": trial.trial_id,
            "dlkdd.control": str(alpha == 0).lower(),
            "dlkdd.enhancement": enhancement,
            "dlkdd.temperature": f"{float(cfg['temperature']):.4g}",
            "dlkdd.alpha": f"{alpha:.4g}",
        }
        if alpha > 0:
            teacher = self.teachers[cfg["enhancement"]]
            tags |= {"dlkdd.teacher_run": teacher["run_id"],
                     "dlkdd.teacher_fingerprint": teacher["fingerprint"]}  # fmt: skip
        name = "control (alpha=0)" if alpha == 0 else (
            f"student {enhancement} T={float(cfg['temperature']):.3g} a={alpha:.3g}"
        )  # fmt: skip
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        for key, value in (("temperature", cfg["temperature"]), ("alpha", alpha),
                           ("enhancement", enhancement)):  # fmt: skip
            self.client.log_param(run.info.run_id, key, value)
        self.runs[trial.trial_id] = run.info.run_id
        return run.info.run_id

    def export_of(self, trial_id: str) -> Path | None:
        """The export in the trial's last checkpoint (its Train run is named by trial id)."""
        run_dir = Path(self.storage) / f"{self.sweep}-student-{trial_id}"
        exports = sorted(run_dir.glob("checkpoint_*/export/meta.json"))
        return exports[-1].parent if exports else None

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        values = _metrics(result)
        step = int(result.get("epoch", 0))
        stamp = int(result.get("timestamp", 0) * 1000)
        batch = [Metric(k, v, stamp, step) for k, v in values.items()]
        if batch:
            self.client.log_batch(self.run_id(trial), metrics=batch)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        run_id = self.run_id(trial)
        export_dir = self.export_of(trial.trial_id)
        if export_dir is not None:
            self.client.set_tag(run_id, "dlkdd.export_dir", str(export_dir))
            self.client.log_artifacts(run_id, str(export_dir), "export")
            log_pytorch_model(run_id, export_dir)
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.client.set_terminated(self.run_id(trial), "FAILED")


def log_pytorch_model(run_id: str, export_dir: Path) -> None:
    """The student as an MLflow PyTorch model (loads with mlflow.pytorch.load_model); the
    clip spec and class names ride along as model metadata for `dlkdd predict`."""
    model, meta = export.load(export_dir)
    clip = meta["clip"]
    example = np.zeros(
        (1, 3, clip["num_frames"], clip["crop_size"], clip["crop_size"]), dtype=np.float32
    )
    with mlflow.start_run(run_id=run_id, nested=True):
        mlflow.pytorch.log_model(
            model, name="model", input_example=example, metadata={"dlkdd": json.dumps(meta)}
        )
