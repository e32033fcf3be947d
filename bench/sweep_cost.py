"""Sweep cost: dlkdd (one shared teacher per enhancement) vs a naive Tune sweep in which
every trial trains its own teacher, over the same student space and trial count.

Both run side by side in one process on one local Ray (FIFO scheduler, so both do the same
student work). Worker-seconds are each Train run's duration (from its storage marker to its
last file) x its workers; "in steps" is the time the loops spent in their epochs (training
+ validation), the rest is start-up, scheduling, checkpointing, testing and export.

    python bench/sweep_cost.py [--samples 4] [--epochs 3] [--cpus 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
from ray import tune
from tiny_study import tiny_data, tiny_spec

from orchestrator import jobs
from orchestrator.search import control_point, tune_space
from orchestrator.spec import Spec
from orchestrator.sweep import run_sweep


def bench_spec(data: Path, work: Path, samples: int, epochs: int) -> Spec:
    sweep = {"enhancements": ["gic", "he"], "num_samples": samples,
             "temperature": {"type": "loguniform", "low": 1, "high": 10},
             "alpha": {"type": "uniform", "low": 0.1, "high": 0.9},
             "scheduler": {"type": "fifo"}}  # fmt: skip
    return tiny_spec(data, work, "cost", epochs, sweep=sweep)


def job_costs(storage: str, prefix: str, workers: int) -> dict[str, float]:
    """Worker-seconds of every Train run named `prefix*`, read from storage the same way for
    both approaches: from the run's storage marker (written when Ray Train starts it) to its
    last file; in-step time is the sum of its epochs' `epoch_seconds`."""
    total = {"jobs": 0.0, "worker_s": 0.0, "step_worker_s": 0.0}
    for run in sorted(Path(storage).glob(f"{prefix}*")):
        done = jobs.finished(storage, run.name)
        if done is None or not (run / ".validate_storage_marker").is_file():
            continue
        started = (run / ".validate_storage_marker").stat().st_mtime
        ended = max(f.stat().st_mtime for f in run.rglob("*") if f.is_file())
        total["jobs"] += 1
        total["worker_s"] += (ended - started) * workers
        total["step_worker_s"] += sum(h["epoch_seconds"] for h in done.history) * workers
    return total


def dlkdd_cost(spec: Spec) -> dict[str, float]:
    """The real sweep: shared teachers, then the students."""
    started = time.perf_counter()
    run_sweep(spec)
    wall = time.perf_counter() - started
    return {**job_costs(spec.storage.path, f"{spec.name}-", spec.resources.num_workers),
            "wall_s": wall}  # fmt: skip


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
            search_alg=tune.search.BasicVariantGenerator(
                points_to_evaluate=[control_point(sweep)], max_concurrent=concurrency
            ),
            max_concurrent_trials=concurrency,
        ),
        run_config=tune.RunConfig(name="naive", storage_path=spec.storage.resolved(), verbose=0),
    ).fit()
    wall = time.perf_counter() - started
    return {**job_costs(spec.storage.path, "naive-", spec.resources.num_workers),
            "wall_s": wall}  # fmt: skip


def report(name: str, c: dict[str, float]) -> None:
    outside = 1 - c["step_worker_s"] / c["worker_s"]
    print(f"{name:8s} {int(c['jobs']):5d} {c['wall_s']:9.1f} {c['worker_s']:11.1f} "
          f"{c['step_worker_s']:14.1f} {outside:12.1%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="Student trials (+ control).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--cpus", type=int, default=3,
        help="Logical CPUs of the local Ray; 3 = one 2-worker job at a time on 2 cores.",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, work = Path(tmp) / "data", Path(tmp) / "work"
        tiny_data(data, per_class=16)
        spec = bench_spec(data, work, args.samples, args.epochs)
        # With the dashboard, as dlkdd runs: Train's placement-group cleaner needs its State API.
        ray.init(num_cpus=args.cpus, include_dashboard=True, logging_level="WARNING")
        ours = dlkdd_cost(spec)
        per_trial = 1 + spec.resources.num_workers * spec.resources.cpus_per_worker
        naive = naive_cost(spec, max(args.cpus // per_trial, 1))
        ray.shutdown()
    print(f"\n{args.samples} student trials + control, 2 enhancements, {args.epochs} epochs, "
          f"2 Train workers per job, {args.cpus} logical CPUs")  # fmt: skip
    print(f"{'':8s} {'jobs':>5s} {'wall s':>9s} {'worker-s':>11s} {'in-step wkr-s':>14s} "
          f"{'outside steps':>12s}")  # fmt: skip
    report("dlkdd", ours)
    report("naive", naive)
    print(
        f"naive / dlkdd: worker-seconds {naive['worker_s'] / ours['worker_s']:.2f}x, "
        f"wall time {naive['wall_s'] / ours['wall_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
