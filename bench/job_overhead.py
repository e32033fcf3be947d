"""Where a job's fixed time goes: one tiny teacher and one student distilled from it, run
as dlkdd runs them (Ray Train + DeepSpeed, 2 workers, logged to MLflow), phase by phase.

The workers time their own phases (trainers.loop.Stopwatch: data, engine, epochs,
checkpoints, test, export, and a teacher's soft-target store for its students); the driver
adds the worker group's start (call to the workers' first line: actors, imports, process
group), the end (final report, teardown, reading the result back) and MLflow (the run with
params, metrics and export). Beside them: the same store as a Train job of its own (what
each teacher cost once more before), the student's MLflow model, now logged once at
promotion (a sweep logged it for every student), and Ray Train's own floor, a run of the
same size whose workers do nothing (and one whose workers only import DeepSpeed: the least
a DeepSpeed job costs), split as Train's controller logs it (worker actors created, train
context initialised on the workers), with what one fresh process pays to import Ray Train
and torch (the controller and each worker import both).

    python bench/job_overhead.py [--epochs 1] [--arch tiny] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import ray
from ray.train import RunConfig
from tiny_study import tiny_data, tiny_spec

from orchestrator import cluster, tracking
from orchestrator.jobs import JobResult, JobTrainer, finished, run_job, scaling
from orchestrator.registry import ensure_model
from orchestrator.spec import Spec
from orchestrator.stores import ensure_store, store_requests

PHASES = ("data", "engine", "epochs", "checkpoints", "test", "export", "soft_targets")


def timed_job(
    spec: Spec, role: str, name: str, teacher: str | None = None, store: str | None = None
) -> dict[str, float]:
    """Runs one job and logs it as `dlkdd train` does; returns seconds per phase. A
    teacher writes its students' soft-target store at its end, as a sweep's does; a
    student reads it from `store` (taken before, timed apart)."""
    job = spec.job(role, "gic" if role == "teacher" else None, teacher, soft_target_store=store)
    if role == "teacher":
        job = job.model_copy(
            update={"soft_targets_for": store_requests(spec, [job.seed])[job.seed]}
        )
    called = time.time()
    result: JobResult = run_job(job, spec.resources, spec.storage.resolved(), name)
    returned = time.time()
    if result.error:
        raise RuntimeError(result.error)
    final = result.final
    phases = {"worker group start": final["worker_started_at"] - called}
    phases |= {p: final[k] for p in PHASES if (k := f"job_{p}_seconds") in final}
    worked = sum(v for k, v in phases.items() if k != "worker group start")
    phases["final report, teardown"] = returned - final["worker_started_at"] - worked
    started = time.time()
    with tracking.job_run(name, job, {"dlkdd.enhancement": "gic"}):
        tracking.log_result(result)
    phases["MLflow run"] = time.time() - started
    return phases


def timed_store(spec: Spec, teacher: str, seed: int) -> tuple[str, float]:
    """The store of the teacher's students on `seed`, and the seconds `ensure_store` took."""
    started = time.time()
    job = spec.job("student", None, teacher, seed=seed)
    store = ensure_store(job, spec.resources, spec.storage.resolved())
    return store, time.time() - started


def model_logging_seconds(run_name: str) -> float:
    """The student's MLflow model, logged as `dlkdd promote` now does, once per version."""
    [run] = mlflow.search_runs(filter_string=f"run_name = '{run_name}'", output_format="list")
    started = time.time()
    ensure_model(mlflow.MlflowClient(), run)
    return time.time() - started


def _noop(config: dict) -> None:
    """A train function that does nothing: what Ray Train alone costs per run."""


def _imports_only(config: dict) -> None:
    """A train function that only imports what a DeepSpeed engine needs (DeepSpeed, as the
    worker loop imports it, and torch._dynamo, which torch's optimisers import on first
    use): the least a job pays."""
    import torch._dynamo  # noqa: F401

    from trainers.loop import imported_deepspeed

    imported_deepspeed()


def ray_train_floor(spec: Spec, name: str, train_func=_noop) -> float:
    """Seconds of a Train run of the same size whose workers do nothing (but `train_func`),
    on the trainer dlkdd's jobs run on."""
    started = time.time()
    JobTrainer(
        train_func, scaling_config=scaling(spec.resources),
        run_config=RunConfig(name=name, storage_path=spec.storage.resolved()),
    ).fit()  # fmt: skip
    return time.time() - started


STARTUP_LOG = re.compile(r"\[Worker Group Initialization\] (.+) in ([\d.]+)s")


def floor_phases() -> dict[str, float]:
    """The worker group's start of the newest Train run, from its controller's log:
    ('2 worker actors created', 7.6), ('Train context initialized on workers', 6.7), ..."""
    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "train"
    newest = max(logs.glob("ray-train-sys-controller-*.log"), key=lambda p: p.stat().st_mtime)
    messages = [json.loads(line)["message"] for line in newest.read_text().splitlines()]
    return {m[1]: float(m[2]) for text in messages if (m := STARTUP_LOG.search(text))}


def import_seconds(module: str, repeats: int = 3) -> float:
    """Wall seconds for a fresh Python process to import `module` (median)."""
    times = []
    for _ in range(repeats):
        started = time.time()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.time() - started)
    return statistics.median(times)


def show(role: str, runs: list[dict[str, float]]) -> None:
    total = statistics.median(sum(r.values()) for r in runs)
    print(f"\n{role}: median of {len(runs)} jobs, {total:.1f} s in all")
    for phase in runs[0]:
        seconds = statistics.median(r[phase] for r in runs)
        print(f"  {phase:24s} {seconds:7.2f} s  {seconds / total:6.1%}")
    fixed = total - statistics.median(r["epochs"] for r in runs)
    print(f"  {'outside the epochs':24s} {fixed:7.2f} s  {fixed / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--repeats", type=int, default=2, help="Jobs per role (median).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, work = Path(tmp) / "data", Path(tmp) / "work"
        tiny_data(data, per_class=8)
        spec = tiny_spec(data, work, "overhead", args.epochs, args.arch)
        print(cluster.connect(min_cpus=3))  # as `dlkdd` starts its own Ray
        tracking.connect(spec.tracking.uri, spec.tracking.experiment)
        teachers = [timed_job(spec, "teacher", f"t{i}", None) for i in range(args.repeats)]
        export = finished(spec.storage.resolved(), "t0").export_location
        store, store_s = timed_store(spec, export, spec.seed)  # t0 wrote it: taken
        _, store_job_s = timed_store(spec, export, spec.seed + 1)  # none: a job of its own
        students = [timed_job(spec, "student", f"s{i}", export, store)
                    for i in range(args.repeats)]  # fmt: skip
        model_s = model_logging_seconds("s0")
        floor = statistics.median(ray_train_floor(spec, f"noop{i}") for i in range(args.repeats))
        phases = floor_phases()
        imports_floor = statistics.median(
            ray_train_floor(spec, f"imports{i}", _imports_only) for i in range(args.repeats)
        )
        ray.shutdown()
    imports = {m: import_seconds(m) for m in ("ray", "ray.train", "ray.train.torch")}
    print(f"\n{args.arch}, {args.epochs} epoch(s), 2 Train workers, 8x32x32 clips, "
          "32 train / 8 val / 8 test clips")  # fmt: skip
    show("teacher", teachers)
    show("student", students)
    print(f"\nMLflow model of a student, logged once when it is promoted: {model_s:.1f} s")
    print(f"soft-target store of the teacher, once for all its students: written at the "
          f"teacher's end ({statistics.median(t['soft_targets'] for t in teachers):.2f} s "
          f"of its job), taken by the students in {store_s:.2f} s; the same store as a "
          f"Train job of its own (another seed's students): {store_job_s:.1f} s")  # fmt: skip
    print(f"Ray Train alone (a no-op train function, same 2 workers): {floor:.1f} s per run")
    for phase, seconds in phases.items():
        print(f"  its worker group, {phase}: {seconds:.2f} s")
    print(f"Ray Train whose workers only import DeepSpeed and torch._dynamo: {imports_floor:.1f} s")
    for module, seconds in imports.items():
        print(f"a fresh process importing {module}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
