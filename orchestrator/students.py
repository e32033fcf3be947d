"""The student sweep: Ray Tune over temperature, alpha and enhancement (which picks the
teacher), each trial a TorchTrainer job; ASHA stops weak trials cooperatively."""

from __future__ import annotations

import time
from typing import Any

from ray import tune
from ray.tune import ResultGrid
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from orchestrator import jobs
from orchestrator.live import TrialBoard
from orchestrator.search import (
    LiveVariants,
    Stores,
    confirm_space,
    first_points,
    search_algorithm,
    trial_job,
    tune_space,
)
from orchestrator.spec import Resources, Spec
from orchestrator.tracking_tune import StudentTracker
from orchestrator.tune_report import SyncedTuneReportCallback
from trainers import stopping


class CooperativeASHA(ASHAScheduler):
    """ASHA's decisions, but a STOP becomes a flag the worker loop obeys after its epoch:
    killing a Train V2 trial would leave its placement group reserved (ray#54305)."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            stopping.flags().stop.remote(trial.trial_id)
            return TrialScheduler.CONTINUE
        return decision


def student_trial(
    config: dict[str, Any], spec_json: dict, teachers: dict[str, str], stores: Stores
) -> None:
    """One trial: a student TorchTrainer job; its epoch reports reach Tune through the
    callback (a return value would be one more report, so it returns nothing). `teachers`:
    exports by enhancement; `stores`: soft-target stores (none with soft_targets: online)."""
    spec = Spec.model_validate(spec_json)
    trial_id = tune.get_context().get_trial_id()
    job = trial_job(spec, config, teachers, stores).model_copy(update={"stop_key": trial_id})
    name, storage = f"{spec.name}-student-{trial_id}", spec.storage.resolved()
    if done := jobs.finished(storage, name):  # finished before a driver crash: not rerun
        tune.report(done.final)
        return
    trainer = jobs.trainer(job, spec.resources, storage, name, [SyncedTuneReportCallback()])
    try:
        result = jobs.result_of(storage, name, trainer.fit())
    except Exception as err:  # Tune retries the trial (its Train run resumes)
        raise RuntimeError(jobs.failure(err)) from err
    if result.error:
        raise RuntimeError(result.error)


def confirm_points(grid: ResultGrid, spec: Spec) -> list[dict[str, Any]]:
    """The search's best `confirm_top_k` configurations, each on every other seed. Only
    trials that trained the whole epoch budget are candidates: an early-stopped run on the
    first seed would not be comparable with full-budget runs on the others."""
    sweep, budget = spec.sweep, spec.student.optim.epochs
    full = [r for r in grid if r.metrics and r.metrics.get("epoch", 0) >= budget]
    full.sort(key=lambda r: (-r.metrics.get(sweep.metric, float("-inf")), r.metrics["trial_id"]))
    chosen: dict[tuple, dict[str, Any]] = {}
    for r in full:
        c = {"enhancement": r.config["enhancement"], "temperature": float(r.config["temperature"]),
             "alpha": float(r.config["alpha"])}  # fmt: skip
        chosen.setdefault((c["enhancement"], f"{c['temperature']:.4g}", f"{c['alpha']:.4g}"), c)
    top = list(chosen.values())[: sweep.confirm_top_k]
    return [{**c, "seed": seed} for c in top for seed in spec.student_seeds()[1:]]


class TrialSlots:
    """How many trials may be live now: the spec's cap, else as many as the cluster holds
    or can scale to, with 1 CPU for each trial's function besides its workers. Asked
    whenever Tune wants a trial, so it is worked out at most every few seconds."""

    def __init__(self, resources: Resources) -> None:
        self.resources, self.count, self.at = resources, 1, float("-inf")

    def __setstate__(self, state: dict) -> None:
        """Restored by `sweep --resume` (Tune pickles the searcher): ask again at once; the
        old process's monotonic clock means nothing here."""
        self.__dict__.update(state, count=1, at=float("-inf"))

    def __call__(self) -> int:
        if time.monotonic() - self.at > jobs.SLOTS_RECHECK_S:
            self.count, self.at = jobs.jobs_at_once(self.resources, trial_cpus=1), time.monotonic()
        return self.count


def scheduler(spec: Spec) -> TrialScheduler:
    s = spec.sweep.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    return CooperativeASHA(
        time_attr="epoch",
        max_t=spec.student.optim.epochs,
        grace_period=s.grace_period,
        reduction_factor=s.reduction_factor,
    )


def tuner(
    spec: Spec,
    teachers: dict[str, str],
    stores: Stores,
    tracker: StudentTracker,
    tune_name: str,
    resume: bool,
    slots: TrialSlots,
    board: TrialBoard,
    confirm: list[dict[str, Any]] | None = None,
) -> tune.Tuner:
    """A fresh Tuner, or the interrupted one restored (finished trials are not rerun): the
    search or, given `confirm` points, their full-budget runs (no early stopping)."""
    stopping.flags()  # the flag board, made (and owned) by this driver
    trainable = tune.with_parameters(
        student_trial, spec_json=spec.model_dump(mode="json"), teachers=teachers, stores=stores
    )
    path = f"{spec.storage.resolved()}/{tune_name}"
    if resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_errored=True)
    sweep = spec.sweep
    if confirm:
        space, samples, schedule = confirm_space(confirm), len(confirm), FIFOScheduler()
        searcher = LiveVariants(slots, points_to_evaluate=confirm)
    else:  # the control is a job of its own (teachers.py), no trial
        space, samples, schedule = tune_space(sweep), sweep.num_samples, scheduler(spec)
        searcher = search_algorithm(sweep, first_points(sweep), slots, spec.student_seeds()[0])
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=sweep.metric,
            mode="max",
            num_samples=samples,
            scheduler=schedule,
            search_alg=searcher,
        ),
        run_config=tune.RunConfig(
            name=tune_name,
            storage_path=spec.storage.resolved(),
            callbacks=[tracker, board],
            # A trial whose actor dies outside its training code (a lost node; once in CI, a
            # killed driver's clean-up racing `--resume`) restarts, at least once; its Train
            # run resumes from its checkpoint.
            failure_config=tune.FailureConfig(max_failures=max(spec.resources.max_failures, 1)),
            verbose=1,
        ),
    )


def fit(tuner: tune.Tuner) -> ResultGrid:
    """Runs the trials; raises naming the first failure if any trial failed for good."""
    grid = tuner.fit()
    errors = [str(e).splitlines()[0] for e in grid.errors]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed, first: {errors[0]}")
    return grid
