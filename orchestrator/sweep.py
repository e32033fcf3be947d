"""One DL-KDD study end to end: teachers (reused or trained), the student sweep, MLflow."""

from __future__ import annotations

import os
import time

import mlflow

from orchestrator import cluster, students, tracking
from orchestrator.compare import CONTROL_TAG, find_parent, summary
from orchestrator.progress import console
from orchestrator.spec import Spec
from orchestrator.stores import ensure_stores
from orchestrator.teachers import CONTROL, Reference, ensure_references, reference_jobs
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
        teachers = ensure_references(spec, reference_jobs(spec), experiment_id, parent.info.run_id)
        control = teachers.pop(CONTROL)
        mlflow.set_tags({f"dlkdd.teacher.{e}": t.run_id for e, t in teachers.items()}
                        | {CONTROL_TAG: control.run_id})  # fmt: skip
        stores = soft_target_stores(spec, teachers)
        slots = students.TrialSlots(spec.resources)
        described = {e: {"run_id": t.run_id, "fingerprint": t.fingerprint, "export": t.export,
                         "soft_targets": stores.get(e)} for e, t in teachers.items()}  # fmt: skip
        tracker = StudentTracker(experiment_id, parent.info.run_id, spec, described)
        console.print(
            f"student sweep: {spec.sweep.num_samples} trials, "
            f"{slots()} at a time (more as nodes join), search {spec.sweep.search}, "
            f"scheduler {spec.sweep.scheduler.type}"
        )
        tuner = students.tuner(
            spec,
            {e: t.export for e, t in teachers.items()},
            stores,
            tracker,
            tune_name,
            resume,
            slots,
        )
        grid = tuner.fit()
        errors = [str(e).splitlines()[0] for e in grid.errors]
        if errors:
            raise RuntimeError(f"{len(errors)} trial(s) failed, first: {errors[0]}")
        try:
            mlflow.log_metrics(summary(experiment_id, parent.info.run_id))
        except Exception as err:  # every trial is done; the headline is a convenience
            console.print(f"[yellow]sweep summary not logged: {err}[/yellow]")
        return parent.info.run_id


def soft_target_stores(spec: Spec, teachers: dict[str, Reference]) -> dict[str, str]:
    """Each teacher's stored logits for its students (none when they run it online)."""
    if spec.distill.soft_targets == "online":
        return {}
    jobs = {e: spec.job("student", teacher_dir=t.export) for e, t in teachers.items()}
    stores = ensure_stores(jobs, spec.resources, spec.storage.resolved())
    mlflow.set_tags({f"dlkdd.soft_targets.{e}": location for e, location in stores.items()})
    return stores
