"""One DL-KDD study end to end: teachers (reused or trained), the student sweep, MLflow."""

from __future__ import annotations

import os
import time

import mlflow

from orchestrator import cluster, live, students, tracking
from orchestrator.compare import CONTROL_TAG, find_parent, summary
from orchestrator.live import TrialBoard
from orchestrator.progress import console
from orchestrator.search import Stores
from orchestrator.spec import Spec
from orchestrator.stores import ensure_stores
from orchestrator.teachers import (
    CONTROL,
    Reference,
    ensure_references,
    is_control,
    reference_jobs,
    teacher_jobs,
)
from orchestrator.tracking_tune import StudentTracker


def run_sweep(spec: Spec, resume: bool = False) -> str:
    """Runs (or with `resume`, finishes) the sweep; returns the MLflow parent run id."""
    if spec.sweep is None:
        raise ValueError(f"spec {spec.name!r} has no 'sweep' block")
    # The student tracker buffers writes through an outage, so MLflow's own per-request
    # retries (about 4 minutes by default, blocking Tune's loop) can be short.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    experiment_id = tracking.connect(spec.tracking.uri, spec.tracking.experiment)
    r = spec.resources
    console.print(cluster.connect(min_cpus=1 + r.num_workers * r.cpus_per_worker))
    previous = find_parent(experiment_id, spec.name, unfinished_only=True) if resume else None
    if previous:
        tune_name = previous.data.tags["dlkdd.tune_name"]
        console.print(f"resuming sweep {spec.name} (run {previous.info.run_id}, {tune_name})")
    else:
        tune_name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    start = {"run_id": previous.info.run_id} if previous else {"run_name": f"sweep {spec.name}"}
    with mlflow.start_run(**start) as parent:
        mlflow.set_tags({"dlkdd.sweep_parent": spec.name, "dlkdd.tune_name": tune_name})
        if not previous:
            # distill.* is the CLI student's default; a sweep's students take T and alpha
            # from the search, so the parent does not show it
            unused = {"name", "distill"}
            mlflow.log_params(tracking.flatten(spec.model_dump(mode="json", exclude=unused)))
        teachers = references(spec, experiment_id, parent.info.run_id)
        run_students(spec, teachers, experiment_id, parent.info.run_id, tune_name, resume)
        try:
            mlflow.log_metrics(summary(experiment_id, parent.info.run_id))
        except Exception as err:  # every trial is done; the headline is a convenience
            console.print(f"[yellow]sweep summary not logged: {err}[/yellow]")
        return parent.info.run_id


def references(spec: Spec, experiment_id: str, parent_run_id: str) -> dict[str, Reference]:
    """The teachers (returned, by enhancement) and each seed's control, reused or trained,
    named on the parent run."""
    teachers = ensure_references(spec, reference_jobs(spec), experiment_id, parent_run_id)
    controls = {k: teachers.pop(k) for k in list(teachers) if is_control(k)}
    mlflow.set_tags({CONTROL_TAG + k[len(CONTROL) :]: c.run_id for k, c in controls.items()})
    name_teachers(teachers)
    return teachers


def name_teachers(teachers: dict[str, Reference]) -> None:
    """Each teacher on the parent run, `dlkdd.teacher.<key>` (compare's teacher rows)."""
    mlflow.set_tags({f"dlkdd.teacher.{k}": t.run_id for k, t in teachers.items()})


def seed_teachers(
    spec: Spec, enhancements: list[str], seeds: list[int], experiment_id: str, parent_run_id: str
) -> dict[str, Reference]:
    """With `teacher_seeds: each`, the teachers of these seeds for these enhancements (the
    confirmed configurations'), reused or trained; none otherwise."""
    if spec.sweep.teacher_seeds == "first":
        return {}
    jobs = teacher_jobs(spec, enhancements, seeds)
    teachers = ensure_references(spec, jobs, experiment_id, parent_run_id)
    name_teachers(teachers)
    return teachers


def described(teachers: dict[str, Reference]) -> dict[str, dict[str, str]]:
    """What the student tracker tags each trial's run with, by teacher key."""
    return {k: {"run_id": t.run_id, "fingerprint": t.fingerprint, "export": t.export}
            for k, t in teachers.items()}  # fmt: skip


def run_students(
    spec: Spec,
    teachers: dict[str, Reference],
    experiment_id: str,
    parent_run_id: str,
    tune_name: str,
    resume: bool,
) -> None:
    """The search on the first seed, then its best configurations on the other seeds
    (a second Tune run, `<tune_name>-confirm`); each trial a nested MLflow run."""
    seeds, slots = spec.student_seeds(), students.TrialSlots(spec.resources)
    stores = soft_target_stores(spec, teachers, seeds[:1], list(teachers))
    console.print(
        f"student sweep: {spec.sweep.num_samples} trials on seed {seeds[0]}, "
        f"{slots()} at a time (more as nodes join), search {spec.sweep.search}, "
        f"scheduler {spec.sweep.scheduler.type}"
    )
    ids = (experiment_id, parent_run_id)
    board = TrialBoard("search", spec.sweep.num_samples, seeds[0])
    grid = tune_students(spec, teachers, stores, ids, tune_name, resume, slots, board)
    confirm = students.confirm_points(grid, spec)
    if not confirm:
        return
    enhancements = sorted({p["enhancement"] for p in confirm})
    teachers = teachers | seed_teachers(spec, enhancements, seeds[1:], *ids)
    stores |= soft_target_stores(spec, teachers, seeds[1:], enhancements)
    console.print(f"confirming the best {len(confirm) // (len(seeds) - 1)} configuration(s) "
                  f"on seed(s) {', '.join(map(str, seeds[1:]))}: {len(confirm)} "
                  "full-budget trials")  # fmt: skip
    board = TrialBoard("confirm runs", len(confirm), seeds[0])
    name = f"{tune_name}-confirm"
    tune_students(spec, teachers, stores, ids, name, resume, slots, board, confirm)


def tune_students(
    spec: Spec,
    teachers: dict[str, Reference],
    stores: Stores,
    ids: tuple[str, str],
    name: str,
    resume: bool,
    slots: students.TrialSlots,
    board: TrialBoard,
    confirm: list[dict] | None = None,
):
    """One Tune run of students (the search, or given `confirm` points their full-budget
    runs), shown live, each trial logged under the parent run `ids` = (experiment, parent)."""
    tracker = StudentTracker(*ids, spec, described(teachers), stores)
    exports = {k: t.export for k, t in teachers.items()}
    with live.shown():
        return students.fit(students.tuner(spec, exports, stores, tracker, name, resume, slots,
                                           board, confirm))  # fmt: skip


def soft_target_stores(
    spec: Spec, teachers: dict[str, Reference], seeds: list[int], enhancements: list[str]
) -> Stores:
    """The stored logits of these teachers for students on these seeds (none when students
    run their teacher online); the search seed's are named on the parent run."""
    if spec.distill.soft_targets == "online":
        return {}
    jobs = {(e, s): spec.job("student", teacher_dir=teachers[spec.teacher_key(e, s)].export,
                             seed=s)
            for e in enhancements for s in seeds}  # fmt: skip
    stores = ensure_stores(jobs, spec.resources, spec.storage.resolved())
    first = spec.student_seeds()[0]
    mlflow.set_tags({f"dlkdd.soft_targets.{e}" + ("" if s == first else f".{s}"): location
                     for (e, s), location in stores.items()})  # fmt: skip
    return stores
