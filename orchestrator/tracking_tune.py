"""A Tune callback that records every student trial as a nested MLflow run, live.

It runs in the driver (where Tune's controller lives), so MLflow has a single writer."""

from __future__ import annotations

import math
import time

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from ray import tune

from orchestrator import jobs, tracking
from orchestrator.progress import console
from orchestrator.search import Stores, trial_job
from orchestrator.spec import Spec

FLUSH_WAIT_S = 600  # how long the end of a sweep waits for an unreachable MLflow
LOGGED_PREFIXES = ("train_", "val_", "test_", "best_", "lr", "bad_clips", "epoch_seconds", "job_")
FINAL_PREFIXES = ("test_", "best_", "job_")  # the rest of a final report repeats epochs


def _metrics(result: dict) -> dict[str, float]:
    """The result's metrics for MLflow. A job's final report repeats its best epoch's val_*
    (Tune ranks by them) at the last epoch's step; logged again they would put a second
    point there and the chart would jump, so of a final report only test_*, best_* (the
    best epoch's validation) and job_* are kept."""
    prefixes = FINAL_PREFIXES if result.get("job_done") else LOGGED_PREFIXES
    return {
        k: float(v)
        for k, v in result.items()
        if k.startswith(prefixes) and isinstance(v, int | float) and math.isfinite(v)
    }


class StudentTracker(tune.Callback):
    """Writes go through a queue: while the tracking server is unreachable they wait (the
    trials keep training) and go out, in order, with the next write that succeeds.

    It writes to the driver's current MLflow URI, not one of its own: Tune restores this
    callback from its pickle on `sweep --resume`, which may name a new `--tracking-uri`."""

    def __init__(
        self, experiment_id: str, parent_run_id: str, spec: Spec,
        teachers: dict[str, dict[str, str]], stores: Stores,
    ) -> None:  # fmt: skip
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.spec, self.teachers = spec, teachers  # teachers: run_id, fingerprint, export
        self.stores = stores
        self.datasets = tracking.dataset_inputs(spec.dataset)  # read once, for every trial
        self.sweep, self.storage = spec.name, spec.storage.resolved()
        self.runs: dict[str, str] = {}
        self.logged: set[str] = set()  # trials whose run was FINISHED before a resume
        self.pending: list[tuple] = []  # (method name, trial id, trial config, *args)
        self.outage_since: float | None = None

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(mlflow.get_tracking_uri())

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._write("_start", trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        step, stamp = int(result.get("epoch", 0)), int(result.get("timestamp", 0) * 1000)
        batch = [Metric(k, v, stamp, step) for k, v in _metrics(result).items()]
        if batch:
            self._write("_result", trial, batch)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._write("_complete", trial)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._write("_error", trial)

    def on_experiment_end(self, trials, **info) -> None:
        """Waits up to FLUSH_WAIT_S for the server to come back before giving up."""
        deadline = time.monotonic() + FLUSH_WAIT_S
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(5)
        if self.pending:
            raise RuntimeError(
                f"MLflow at {mlflow.get_tracking_uri()} unreachable for {FLUSH_WAIT_S} s at "
                f"the end of the sweep: {len(self.pending)} writes not made (trial results "
                "are in storage)"
            )

    def _write(self, method: str, trial, *args) -> None:
        self.pending.append((method, trial.trial_id, dict(trial.config), *args))
        self.flush()

    def flush(self) -> bool:
        """Sends queued writes in order; False (and they stay queued) if MLflow fails."""
        while self.pending:
            method, trial_id, config, *args = self.pending[0]
            try:
                getattr(self, method)(trial_id, config, *args)
            except Exception as err:  # connection refused, timeouts, 5xx after retries
                if self.outage_since is None:
                    self.outage_since = time.monotonic()
                    first = str(err).splitlines()[0][:200]
                    console.print(f"[yellow]MLflow write failed ({first}); buffering, "
                                  "trials continue[/yellow]")  # fmt: skip
                return False
            self.pending.pop(0)
        if self.outage_since is not None:
            console.print(f"MLflow back after {time.monotonic() - self.outage_since:.0f} s; "
                          "buffered writes sent")  # fmt: skip
            self.outage_since = None
        return True

    def run_id(self, trial_id: str, config: dict) -> str:
        """The trial's MLflow run: found again after a resume, created otherwise."""
        if trial_id in self.runs:
            return self.runs[trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            f"tags.`dlkdd.trial_id` = '{trial_id}' and "
            f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'",
        )
        if found:
            self.runs[trial_id] = found[0].info.run_id
            if found[0].info.status == "FINISHED":
                self.logged.add(trial_id)
            return self.runs[trial_id]
        exports = {e: t["export"] for e, t in self.teachers.items()}
        job = trial_job(self.spec, config, exports, self.stores)
        enhancement = config["enhancement"]
        teacher = self.teachers[self.spec.teacher_key(enhancement, job.seed)]
        tags = {
            **tracking.origin_tags(),
            "mlflow.parentRunId": self.parent_run_id,
            "dlkdd.role": tracking.role(job),
            "dlkdd.sweep": self.sweep,
            "dlkdd.trial_id": trial_id,
            "dlkdd.phase": "confirm" if "seed" in config else "search",
            "dlkdd.control": "false",
            "dlkdd.enhancement": enhancement,
            "dlkdd.temperature": f"{job.distill.temperature:.4g}",
            "dlkdd.alpha": f"{job.distill.alpha:.4g}",
            "dlkdd.teacher_run": teacher["run_id"],
            "dlkdd.teacher_fingerprint": teacher["fingerprint"],
        }
        if job.soft_target_store:
            tags["dlkdd.soft_targets"] = job.soft_target_store
        name = tracking.run_name(job, enhancement)
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        params = tracking.job_params(job, enhancement)
        self.client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
        self.client.log_inputs(run.info.run_id, self.datasets)
        self.runs[trial_id] = run.info.run_id
        return run.info.run_id

    def _start(self, trial_id: str, config: dict) -> None:
        self.run_id(trial_id, config)

    def _result(self, trial_id: str, config: dict, batch: list[Metric]) -> None:
        run_id = self.run_id(trial_id, config)
        if trial_id not in self.logged:
            self.client.log_batch(run_id, metrics=batch)

    def _complete(self, trial_id: str, config: dict) -> None:
        run_id = self.run_id(trial_id, config)
        if trial_id in self.logged:
            return
        # The export in the trial's final checkpoint (its Train run is named by trial id).
        done = jobs.finished(self.storage, f"{self.sweep}-student-{trial_id}")
        if done is not None:
            self.client.set_tag(run_id, "dlkdd.export_dir", done.export_location)
            self.client.log_artifacts(run_id, str(done.export_dir), "export")
        self.client.set_terminated(run_id, "FINISHED")
        self.logged.add(trial_id)

    def _error(self, trial_id: str, config: dict) -> None:
        self.client.set_terminated(self.run_id(trial_id, config), "FAILED")
