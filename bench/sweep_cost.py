"""Sweep cost: dlkdd with its soft-target store (one shared teacher per enhancement, its
logits computed once), dlkdd with online teachers (every student runs its teacher), and a
naive Tune sweep in which every trial trains its own teacher, over the same student space.

All three run side by side in one process on one local Ray (FIFO scheduler, so all do the
same student work), each with its own storage and MLflow. Worker-seconds are each Train
run's duration (from its storage marker to its last file) x its workers; "in steps" is the
time the loops spent in their epochs (training + validation), the rest is start-up,
scheduling, checkpointing, testing and export. Teacher forwards count the clips a teacher
network was run on for soft targets (the store's epochs x clips; online: every distilled
student's epochs x clips per epoch).

    python bench/sweep_cost.py [--samples 4] [--epochs 3] [--cpus 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
import torch
from ray import tune
from tiny_study import tiny_data, tiny_spec

from orchestrator import cluster, jobs
from orchestrator.search import tune_space
from orchestrator.spec import Spec
from orchestrator.stores import FOLDER
from orchestrator.sweep import run_sweep
from trainers import export
from trainers.data.manifests import load_splits


def bench_spec(data: Path, work: Path, samples: int, epochs: int, soft_targets: str) -> Spec:
    sweep = {"enhancements": ["gic", "he"], "num_samples": samples,
             "temperature": {"type": "loguniform", "low": 1, "high": 10},
             "alpha": {"type": "uniform", "low": 0.1, "high": 0.9},
             "scheduler": {"type": "fifo"}}  # fmt: skip
    return tiny_spec(data, work, f"cost-{soft_targets}", epochs, sweep=sweep,
                     distill={"soft_targets": soft_targets})  # fmt: skip


def job_costs(storage: str, prefix: str, workers: int, exported: bool = True) -> dict[str, float]:
    """Worker-seconds of every Train run named `prefix*`, read from storage the same way for
    every approach: from the run's storage marker (written when Ray Train starts it) to its
    last file; in-step time is the sum of its epochs' `epoch_seconds`. `exported`: only
    runs that exported a model (teachers and students; not the Tune experiment's folder);
    store jobs export nothing and have no epochs: all their time is outside steps."""
    total = {"jobs": 0.0, "worker_s": 0.0, "step_worker_s": 0.0}
    for run in sorted(Path(storage).glob(f"{prefix}*")):
        done = jobs.finished(storage, run.name)
        if (exported and done is None) or not (run / ".validate_storage_marker").is_file():
            continue
        started = (run / ".validate_storage_marker").stat().st_mtime
        ended = max(f.stat().st_mtime for f in run.rglob("*") if f.is_file())
        total["jobs"] += 1
        total["worker_s"] += (ended - started) * workers
        if done:
            total["step_worker_s"] += sum(h["epoch_seconds"] for h in done.history) * workers
    return total


def clips_per_epoch(spec: Spec) -> int:
    """Training clips a student sees per epoch (each worker drops its last partial batch)."""
    n = len(load_splits(spec.dataset)["train"].items)
    per_worker = -(-n // spec.resources.num_workers)  # DistributedSampler pads up
    return (
        per_worker
        // spec.student.optim.batch_size
        * spec.student.optim.batch_size
        * (spec.resources.num_workers)
    )


def teacher_forwards(spec: Spec, students: str) -> int:
    """Clips the teachers were run on for soft targets: the stores' whole tensors, or every
    distilled student's (Train runs named `students*`) epochs x clips per epoch."""
    if spec.distill.soft_targets == "store":
        stores = Path(spec.storage.path) / FOLDER
        return sum(torch.load(f, weights_only=True).shape[:2].numel()
                   for f in stores.glob("*.pt"))  # fmt: skip
    epochs = 0
    for run in Path(spec.storage.path).glob(f"{students}*"):
        done = jobs.finished(spec.storage.path, run.name)
        if done and export.read_meta(done.export_dir)["distill"]["alpha"] > 0:
            epochs += len(done.history)
    return epochs * clips_per_epoch(spec)


def dlkdd_cost(spec: Spec) -> dict[str, float]:
    """The real sweep: shared teachers (and their store), then the students."""
    started = time.perf_counter()
    run_sweep(spec)
    wall = time.perf_counter() - started
    workers = spec.resources.num_workers
    costs = job_costs(spec.storage.path, f"{spec.name}-", workers)
    stores = job_costs(spec.storage.path, "soft-targets-", workers, exported=False)
    return {k: costs[k] + stores[k] for k in costs} | {
        "wall_s": wall, "forwards": teacher_forwards(spec, f"{spec.name}-student-")}  # fmt: skip


def naive_trial(config: dict, spec_json: dict) -> None:
    """What a plain Tune sweep over (enhancement, T, alpha) does: train this trial's own
    teacher, then its student."""
    spec = Spec.model_validate(spec_json)
    trial, storage = tune.get_context().get_trial_id(), spec.storage.resolved()
    alpha, teacher_dir = float(config["alpha"]), None
    if alpha > 0:
        teacher = jobs.run_job(spec.job("teacher", config["enhancement"]), spec.resources,
                               storage, f"naive-teacher-{trial}")  # fmt: skip
        teacher_dir = teacher.export_location
    job = spec.job("student", teacher_dir=teacher_dir, temperature=config["temperature"],
                   alpha=alpha)  # fmt: skip
    student = jobs.run_job(job, spec.resources, storage, f"naive-student-{trial}")
    tune.report({"val_top1": student.final.get("val_top1", 0.0)})


def naive_cost(spec: Spec, concurrency: int) -> dict[str, float]:
    sweep = spec.sweep
    started = time.perf_counter()
    tune.Tuner(
        tune.with_parameters(naive_trial, spec_json=spec.model_dump(mode="json")),
        param_space=tune_space(sweep),
        tune_config=tune.TuneConfig(
            num_samples=sweep.num_samples + 1,
            search_alg=tune.search.BasicVariantGenerator(  # the control first, as a trial
                points_to_evaluate=[
                    {"temperature": 1.0, "alpha": 0.0, "enhancement": sweep.enhancements[0]}
                ],
                max_concurrent=concurrency,
            ),  # fmt: skip
            max_concurrent_trials=concurrency,
        ),
        run_config=tune.RunConfig(name="naive", storage_path=spec.storage.resolved(), verbose=0),
    ).fit()
    wall = time.perf_counter() - started
    return {**job_costs(spec.storage.path, "naive-", spec.resources.num_workers),
            "wall_s": wall, "forwards": teacher_forwards(spec, "naive-student-")}  # fmt: skip


def report(name: str, c: dict[str, float]) -> None:
    outside = 1 - c["step_worker_s"] / c["worker_s"]
    print(f"{name:13s} {int(c['jobs']):5d} {c['wall_s']:9.1f} {c['worker_s']:11.1f} "
          f"{c['step_worker_s']:14.1f} {outside:12.1%} {int(c['forwards']):16d}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="Distilled student trials.")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--cpus", type=int, default=3,
        help="Logical CPUs of the local Ray; 3 = one 2-worker job at a time on 2 cores.",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_data(Path(tmp) / "data", per_class=16)
        # each approach with its own storage and MLflow: no teacher is shared between them
        specs = {kind: bench_spec(data, Path(tmp) / kind, args.samples, args.epochs, kind)
                 for kind in ("store", "online")}  # fmt: skip
        # As dlkdd starts its own Ray: with the dashboard (Train's placement-group cleaner
        # needs its State API) and without what only a cluster needs.
        cluster.use_own_ray_env()
        ray.init(num_cpus=args.cpus, include_dashboard=True, logging_level="WARNING")
        costs = {f"dlkdd {kind}": dlkdd_cost(spec) for kind, spec in specs.items()}
        r = specs["online"].resources
        naive_spec = bench_spec(data, Path(tmp) / "naive", args.samples, args.epochs, "online")
        per_trial = 1 + r.num_workers * r.cpus_per_worker
        costs["naive"] = naive_cost(naive_spec, max(args.cpus // per_trial, 1))
        ray.shutdown()
    print(f"\n{args.samples} student trials and the control, 2 enhancements, {args.epochs} epochs, "
          f"2 Train workers per job, {args.cpus} logical CPUs")  # fmt: skip
    print(f"{'':13s} {'jobs':>5s} {'wall s':>9s} {'worker-s':>11s} {'in-step wkr-s':>14s} "
          f"{'outside steps':>12s} {'teacher fwd clips':>16s}")  # fmt: skip
    for name, c in costs.items():
        report(name, c)
    store = costs["dlkdd store"]
    for name in ("dlkdd online", "naive"):
        c = costs[name]
        print(f"{name} / dlkdd store: teacher forwards {c['forwards'] / store['forwards']:.2f}x, "
              f"worker-seconds {c['worker_s'] / store['worker_s']:.2f}x, "
              f"wall time {c['wall_s'] / store['wall_s']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
