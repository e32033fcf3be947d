"""Teachers of a sweep: one per enhancement, reused by fingerprint, missing ones trained
concurrently (each a TorchTrainer job inside a zero-CPU Ray task)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import ray

from orchestrator import tracking
from orchestrator.fingerprint import teacher_fingerprint
from orchestrator.jobs import JobResult, run_job
from orchestrator.progress import console
from orchestrator.spec import Resources, Spec
from trainers.config import JobConfig
from trainers.data.frames import sample_frames
from trainers.data.manifests import load_splits
from trainers.enhance import zero_dce
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


def zero_dce_weights(spec: Spec) -> str:
    """The spec's Zero-DCE weights, or ones trained on its training frames, kept in storage
    (where every node's teacher job reads them) and reused by every later sweep."""
    if spec.enhancement.zero_dce_weights is not None:
        return spec.enhancement.zero_dce_weights
    steps = spec.sweep.zero_dce_steps if spec.sweep else 300
    key = teacher_fingerprint(spec.job("teacher", "identity"))
    location = join(spec.storage.resolved(), "zero_dce", f"{key}-{steps}.pt")
    if not is_file(location):
        items = load_splits(spec.dataset, spec.seed)["train"].items
        frames = sample_frames([p for p, _ in items], per_video=2, max_size=128, seed=spec.seed)
        with console.status(f"training Zero-DCE on {len(frames)} frames ({steps} steps)"):
            net, history = zero_dce.train(frames, steps=steps, seed=spec.seed)
        with tempfile.TemporaryDirectory() as d:
            zero_dce.save(net, Path(d) / "zero_dce.pt")
            put(Path(d) / "zero_dce.pt", location)
        console.print(f"Zero-DCE: loss {history[0]:.3f} -> {history[-1]:.3f}, saved {location}")
    return location


def teacher_job(spec: Spec, enhancement: str) -> JobConfig:
    job = spec.job("teacher", enhancement)
    if enhancement == "zero_dce":
        enh = job.enhancement.model_copy(update={"zero_dce_weights": zero_dce_weights(spec)})
        job = job.model_copy(update={"enhancement": enh})
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
    prints = {e: teacher_fingerprint(j) for e, j in jobs.items()}
    teachers: dict[str, Teacher] = {}
    for enhancement, fp in prints.items():
        if found := find_finished(fp, experiment_id):
            teachers[enhancement] = Teacher(enhancement, *found, fp, reused=True)
            console.print(f"teacher [bold]{enhancement}[/bold]: reusing run {found[0]} ({fp})")
    missing = [e for e in jobs if e not in teachers]
    if missing:
        console.print(f"training {len(missing)} teacher(s) concurrently: {', '.join(missing)}")
        storage = spec.storage.resolved()
        names = {e: f"{spec.name}-teacher-{e}-{prints[e]}" for e in missing}
        started_ms = int(time.time() * 1000)
        futures = {
            e: _train_remote.remote(jobs[e], spec.resources, storage, names[e]) for e in missing
        }
        for enhancement, future in futures.items():
            result = ray.get(future)
            tags = {
                "dlkdd.enhancement": enhancement,
                "dlkdd.fingerprint": prints[enhancement],
                "dlkdd.sweep": spec.name,
            }
            with tracking.job_run(
                names[enhancement], jobs[enhancement], tags, parent_run_id, started_ms
            ) as r:
                tracking.log_result(result)  # raises JobFailed (run FAILED) on error
            teachers[enhancement] = Teacher(
                enhancement, r.info.run_id, result.export_location, prints[enhancement], False
            )
            console.print(
                f"teacher [bold]{enhancement}[/bold]: test_top1 "
                f"{result.final.get('test_top1', float('nan')):.3f} (run {r.info.run_id})"
            )
    return teachers
