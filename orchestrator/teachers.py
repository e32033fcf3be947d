"""A sweep's reference jobs: one teacher per enhancement and the full-budget control, each
reused by fingerprint, the missing ones trained concurrently (each a TorchTrainer job
inside a zero-CPU Ray task)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import ray

from orchestrator import live, tracking
from orchestrator.fingerprint import data_digest, job_fingerprint
from orchestrator.jobs import JobResult, in_turn, jobs_at_once, progress, run_job
from orchestrator.progress import console
from orchestrator.spec import Resources, Spec, key_base, seed_key
from orchestrator.stores import store_requests
from trainers.config import CURVE_WEIGHTS, JobConfig, StoreRequest
from trainers.data.frames import sample_frames
from trainers.data.manifests import load_splits
from trainers.enhance import CURVE_NETS, curves, zero_reference
from trainers.storage import is_file, join, put

CONTROL = "control"  # the search seed's control among a sweep's reference jobs


def control_key(seed: int, first: int) -> str:
    """The control of `seed` among the reference jobs: CONTROL for the search's (`first`),
    `control.<seed>` for the confirm runs' other seeds."""
    return seed_key(CONTROL, seed, first)


def is_control(key: str) -> bool:
    return key_base(key) == CONTROL


@dataclass(frozen=True)
class Reference:
    """A job the students learn from or are measured against: a teacher (keyed by its
    enhancement) or a seed's control (`control_key`), reused by fingerprint or trained."""

    key: str
    run_id: str
    export: str  # where its export lies in storage: a path or a URI
    fingerprint: str
    reused: bool


@ray.remote(num_cpus=0)
def _train_remote(job: JobConfig, resources: Resources, storage: str, name: str) -> JobResult:
    return run_job(job, resources, storage, name)


def curve_weights(spec: Spec, variant: str = "zero_dce") -> str:
    """The spec's Zero-DCE (variant zero_dce_pp: Zero-DCE++) weights, or ones trained on its
    training frames (`sweep.zero_dce_steps` for either), kept in storage where every node's
    teacher job reads them, and reused by every later sweep."""
    enh = spec.enhancement.model_copy(update={"name": variant})
    if (given := enh.weights()) is not None:
        return given
    steps = spec.sweep.zero_dce_steps if spec.sweep else 300
    # keyed by the frames they learn from (files of older dlkdd versions, named otherwise,
    # used the opposite curve sign and are never found)
    data = data_digest(spec.dataset, splits=("train",))[:16]
    location = join(spec.storage.resolved(), variant, f"train-{data}-seed{spec.seed}-{steps}.pt")
    if not is_file(location):
        paths = [p for p, _ in load_splits(spec.dataset)["train"].items]
        task = _train_curves.options(num_cpus=spec.resources.cpus_per_worker)
        with console.status(f"training {variant} on frames of {len(paths)} videos ({steps} steps)"):
            first, last = ray.get(task.remote(variant, paths, steps, spec.seed, location))
        console.print(f"{variant}: loss {first:.3f} -> {last:.3f}, saved {location}")
    return location


@ray.remote
def _train_curves(variant: str, paths: list[str], steps: int, seed: int, location: str):
    """Trains Zero-DCE(++) where the cluster has CPUs (not on a small head: ARID's 2,000
    steps take minutes) and writes the weights to storage; returns (first, last) loss."""
    frames = sample_frames(paths, per_video=2, max_size=128, seed=seed)
    net, history = zero_reference.train(CURVE_NETS[variant], frames, steps=steps, seed=seed)
    with tempfile.TemporaryDirectory() as d:
        curves.save(net, Path(d) / "weights.pt")
        put(Path(d) / "weights.pt", location)
    return history[0], history[-1]


def teacher_job(
    spec: Spec, enhancement: str, seed: int | None = None, stores: Sequence[StoreRequest] = ()
) -> JobConfig:
    """A teacher on `seed` (by default the spec's), with its enhancement's curve weights,
    writing its students' `stores` at its end."""
    job = spec.job("teacher", enhancement, seed=seed)
    job = job.model_copy(update={"soft_targets_for": list(stores)})
    if enhancement in CURVE_WEIGHTS:
        update = {CURVE_WEIGHTS[enhancement]: curve_weights(spec, enhancement)}
        job = job.model_copy(update={"enhancement": job.enhancement.model_copy(update=update)})
    return job


def find_finished(fingerprint: str, experiment_id: str) -> tuple[str, str] | None:
    """A finished teacher or control run with this fingerprint whose export can be read."""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`dlkdd.fingerprint` = '{fingerprint}' and "
        "attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    for run in runs:
        location = run.data.tags.get("dlkdd.export_dir")
        if location and is_file(join(location, "meta.json")):
            return run.info.run_id, location
    return None


def teacher_jobs(spec: Spec, enhancements: list[str], seeds: list[int]) -> dict[str, JobConfig]:
    """The teachers students of these seeds distil from, by `Spec.teacher_key`: one per
    enhancement on the spec's seed, or with `teacher_seeds: each` one per enhancement and
    seed, on that seed; each writes the store of its students (`seeds` holds one seed
    unless teachers are per seed)."""
    each, asked = spec.sweep.teacher_seeds == "each", store_requests(spec, seeds)
    return {spec.teacher_key(e, s): teacher_job(spec, e, s if each else None, asked[s])
            for e in enhancements for s in seeds}  # fmt: skip


def reference_jobs(spec: Spec) -> dict[str, JobConfig]:
    """The teachers and a control for each of the sweep's seeds: a student with alpha = 0
    (plain CE on original video) trained for the students' full epoch budget and schedule
    as a job of its own, so no early stopping and no searcher ever sees it."""
    seeds = spec.student_seeds()
    controls = {control_key(s, seeds[0]): spec.job("student", alpha=0.0, seed=s) for s in seeds}
    return teacher_jobs(spec, spec.sweep.enhancements, seeds[:1]) | controls


def ensure_references(
    spec: Spec, jobs: dict[str, JobConfig], experiment_id: str, parent_run_id: str
) -> dict[str, Reference]:
    """Each job (keyed by enhancement, or CONTROL) mapped to a finished run: one with its
    fingerprint is reused, the missing ones train side by side as the cluster fits them."""
    data = data_digest(spec.dataset)  # lists and video sizes: read once
    prints = {k: job_fingerprint(j, spec.resources, data) for k, j in jobs.items()}
    found: dict[str, Reference] = {}
    for key, fp in prints.items():
        if run := find_finished(fp, experiment_id):
            found[key] = Reference(key, *run, fp, reused=True)
            console.print(f"{_label(key)}: reusing run {run[0]} ({fp})")
    missing = {k: j for k, j in jobs.items() if k not in found}
    if missing:
        found |= _train(spec, missing, prints, parent_run_id)
    return found


def _train(
    spec: Spec, jobs: dict[str, JobConfig], prints: dict[str, str], parent_run_id: str
) -> dict[str, Reference]:
    """Trains the jobs side by side as the cluster fits them, shown live (epochs of each
    from its newest checkpoint), each logged as its nested run when it ends."""
    storage, r = spec.storage.resolved(), spec.resources
    console.print(f"training {', '.join(_label(k) for k in jobs)}: "
                  f"{jobs_at_once(r)} at a time (more as nodes join)")  # fmt: skip
    names = {k: reference_name(spec, k, prints[k]) for k in jobs}
    launches = {k: partial(_train_remote.remote, j, r, storage, names[k]) for k, j in jobs.items()}
    epochs = {k: j.optim.epochs for k, j in jobs.items()}
    board = live.JobBoard({k: _label(k) for k in jobs}, epochs)

    def polled(running: list[str]) -> None:
        for k in running:
            done = progress(storage, names[k])
            board.update(k, "training" if done else "starting", done)

    trained = {}
    with live.shown():
        for k, result, started_ms in in_turn(launches, partial(jobs_at_once, r), polled):
            board.update(k, "error" if result.error else "done", _final(result))
            trained[k] = _log_reference(spec, k, jobs[k], prints[k], result, parent_run_id,
                                        started_ms)  # fmt: skip
    return trained


def _final(result: JobResult) -> dict[str, float]:
    """What the board shows of a finished job: its epochs and its exported (best) weights'
    validation top-1."""
    shown = {"epoch": "epoch", "val_top1": "best_val_top1"}
    return {k: result.final[m] for k, m in shown.items() if m in result.final}


def teacher_name(spec: Spec, enhancement: str, fingerprint: str) -> str:
    """The teacher's Train run name: its folder in storage."""
    return f"{spec.name}-teacher-{enhancement}-{fingerprint}"


def reference_name(spec: Spec, key: str, fingerprint: str) -> str:
    """A teacher's name, or the control's (`<spec>-control-<fingerprint>`)."""
    if is_control(key):
        return f"{spec.name}-control-{fingerprint}"
    return teacher_name(spec, key.replace(".", "-seed"), fingerprint)


def _label(key: str) -> str:
    seed = key.split(".")[1] if "." in key else None
    if is_control(key):
        return "the control" if seed is None else f"the control of seed {seed}"
    return f"teacher [bold]{key_base(key)}[/bold]" + (f" of seed {seed}" if seed else "")


def _log_reference(
    spec: Spec,
    key: str,
    job: JobConfig,
    fingerprint: str,
    result: JobResult,
    parent_run_id: str,
    started_ms: int,
) -> Reference:
    """The finished job's nested MLflow run (dated from its start); raises if it failed."""
    tags = {
        "dlkdd.enhancement": key_base(key),
        "dlkdd.fingerprint": fingerprint,
        "dlkdd.sweep": spec.name,
    }
    if is_control(key):
        tags |= {"dlkdd.enhancement": "none", "dlkdd.control": "true", "dlkdd.alpha": "0"}
    name = tracking.run_name(job, tags["dlkdd.enhancement"])
    with tracking.job_run(name, job, tags, parent_run_id, started_ms) as r:
        tracking.log_result(result)  # raises JobFailed (run FAILED) on error
    console.print(
        f"{_label(key)}: test_top1 "
        f"{result.final.get('test_top1', float('nan')):.3f} (run {r.info.run_id})"
    )
    return Reference(key, r.info.run_id, result.export_location, fingerprint, False)
