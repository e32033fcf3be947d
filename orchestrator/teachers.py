"""Teachers of a sweep: one per enhancement, reused by fingerprint, missing ones trained
concurrently (each a TorchTrainer job inside a zero-CPU Ray task)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import ray

from orchestrator import tracking
from orchestrator.fingerprint import data_digest, teacher_fingerprint
from orchestrator.jobs import JobResult, in_turn, jobs_at_once, run_job
from orchestrator.progress import console
from orchestrator.spec import Resources, Spec
from trainers.config import CURVE_WEIGHTS, JobConfig
from trainers.data.frames import sample_frames
from trainers.data.manifests import load_splits
from trainers.enhance import CURVE_NETS, curves, zero_reference
from trainers.storage import is_file, join, put


@dataclass(frozen=True)
class Teacher:
    enhancement: str
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
    data = data_digest(spec.dataset, spec.seed, splits=("train",))[:16]
    location = join(spec.storage.resolved(), variant, f"train-{data}-seed{spec.seed}-{steps}.pt")
    if not is_file(location):
        paths = [p for p, _ in load_splits(spec.dataset, spec.seed)["train"].items]
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


def teacher_job(spec: Spec, enhancement: str) -> JobConfig:
    job = spec.job("teacher", enhancement)
    if enhancement in CURVE_WEIGHTS:
        update = {CURVE_WEIGHTS[enhancement]: curve_weights(spec, enhancement)}
        job = job.model_copy(update={"enhancement": job.enhancement.model_copy(update=update)})
    return job


def find_finished(fingerprint: str, experiment_id: str) -> tuple[str, str] | None:
    """A finished teacher run with this fingerprint whose export can still be read."""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`dlkdd.fingerprint` = '{fingerprint}' and "
        "tags.`dlkdd.role` = 'teacher' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    for run in runs:
        location = run.data.tags.get("dlkdd.export_dir")
        if location and is_file(join(location, "meta.json")):
            return run.info.run_id, location
    return None


def ensure_teachers(spec: Spec, experiment_id: str, parent_run_id: str) -> dict[str, Teacher]:
    """Every enhancement of the sweep mapped to a finished teacher, training only missing ones."""
    jobs = {e: teacher_job(spec, e) for e in spec.sweep.enhancements}
    data = data_digest(spec.dataset, spec.seed)  # lists and video sizes: read once
    prints = {e: teacher_fingerprint(j, spec.resources, data) for e, j in jobs.items()}
    teachers: dict[str, Teacher] = {}
    for enhancement, fp in prints.items():
        if found := find_finished(fp, experiment_id):
            teachers[enhancement] = Teacher(enhancement, *found, fp, reused=True)
            console.print(f"teacher [bold]{enhancement}[/bold]: reusing run {found[0]} ({fp})")
    missing = [e for e in jobs if e not in teachers]
    if missing:
        slots = jobs_at_once(spec.resources)
        console.print(f"training {len(missing)} teacher(s), {slots} at a time: "
                      f"{', '.join(missing)}")  # fmt: skip
        storage, r = spec.storage.resolved(), spec.resources
        launches = {e: partial(_train_remote.remote, jobs[e], r, storage,
                               teacher_name(spec, e, prints[e])) for e in missing}  # fmt: skip
        for e, result, started_ms in in_turn(launches, slots):
            teachers[e] = _log_teacher(spec, e, jobs[e], prints[e], result, parent_run_id,
                                       started_ms)  # fmt: skip
    return teachers


def teacher_name(spec: Spec, enhancement: str, fingerprint: str) -> str:
    """The teacher's Train run name (its folder in storage) and MLflow run name."""
    return f"{spec.name}-teacher-{enhancement}-{fingerprint}"


def _log_teacher(
    spec: Spec,
    enhancement: str,
    job: JobConfig,
    fingerprint: str,
    result: JobResult,
    parent_run_id: str,
    started_ms: int,
) -> Teacher:
    """The finished teacher's nested MLflow run (dated from its start); raises if it failed."""
    tags = {"dlkdd.enhancement": enhancement, "dlkdd.fingerprint": fingerprint,
            "dlkdd.sweep": spec.name}  # fmt: skip
    with tracking.job_run(result.name, job, tags, parent_run_id, started_ms) as r:
        tracking.log_result(result)  # raises JobFailed (run FAILED) on error
    console.print(
        f"teacher [bold]{enhancement}[/bold]: test_top1 "
        f"{result.final.get('test_top1', float('nan')):.3f} (run {r.info.run_id})"
    )
    return Teacher(enhancement, r.info.run_id, result.export_location, fingerprint, False)
