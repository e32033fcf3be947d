"""`--preflight`: the researcher's study through the same code path, shrunk to minutes.

What changes: a few clips per class and split, small clips, one epoch per job, short
Zero-DCE training, one distilled student per enhancement plus the control, the confirm runs
on a second seed only (of the best configuration, with its control), resources that
fit this machine, its own MLflow experiment and storage sub-folder (a real sweep never
reuses a preflight teacher). What stays: architecture, optimiser, ZeRO stage, the raw
`deepspeed:` block, the enhancement list, the dataset's format and layout, the loader
processes (capped to the machine), the search algorithm and the scheduler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from orchestrator.spec import Spec
from orchestrator.tracking import STUDENT_ROLES
from trainers.config import DatasetConfig, OptimConfig
from trainers.data.check import ListReport, check_lists, dataset_lists
from trainers.data.layouts import ManifestError
from trainers.data.manifests import load_splits, resolve_list
from trainers.schedule import deep_merge
from trainers.storage import is_file, join, remove

CLIPS_PER_CLASS = 1
# 16 px is the smallest crop every architecture maps to a 1x1 feature map (stride 16).
CLIP = {"num_frames": 8, "crop_size": 16}
MAX_BATCH = 2
MAX_TEST_WINDOWS = 1
MAX_TRAIN_WORKERS = 2
ZERO_DCE_STEPS = 20


def shrink(spec: Spec, gpus_available: float = 0) -> Spec:
    """The preflight version of `spec` (see the module docstring for what is kept)."""
    r = spec.resources
    workers = min(r.num_workers, MAX_TRAIN_WORKERS)
    gpus = r.gpus_per_worker if gpus_available >= workers * r.gpus_per_worker else 0
    changes: dict[str, Any] = {
        "dataset": {
            "max_per_class": CLIPS_PER_CLASS,
            "num_workers": min(spec.dataset.num_workers, os.cpu_count() or 1),
        },
        "clip": {**CLIP, "test_windows": min(spec.clip.test_windows, MAX_TEST_WINDOWS)},
        "teacher": {"optim": _one_short_epoch(spec.teacher.optim)},
        "student": {"optim": _one_short_epoch(spec.student.optim)},
        # one job at a time: tiny jobs side by side only oversubscribe a small machine's cores
        "resources": {
            "num_workers": workers,
            "cpus_per_worker": 1,
            "gpus_per_worker": gpus,
            "max_concurrent_trials": 1,
        },
        "tracking": {"experiment": f"{spec.tracking.experiment}-preflight"},
        "storage": {"path": join(spec.storage.resolved(), "preflight")},
    }
    if spec.sweep is not None:
        changes["sweep"] = {
            "num_samples": len(spec.sweep.enhancements),
            "probe_each_enhancement": True,
            "zero_dce_steps": min(spec.sweep.zero_dce_steps, ZERO_DCE_STEPS),
            "scheduler": {"grace_period": 1},
            # the confirm runs rehearsed: the best configuration on one more seed
            "seeds": spec.sweep.seeds[:2] if spec.sweep.seeds else None,
            "confirm_top_k": 1,
        }
    return Spec.model_validate(deep_merge(spec.model_dump(mode="json"), changes))


def _one_short_epoch(optim: OptimConfig) -> dict[str, int]:
    return {"epochs": 1, "batch_size": min(optim.batch_size, MAX_BATCH)}


def shrunk_on_cluster(spec: Spec) -> Spec:
    """Connects to Ray (saying which), shrinks the spec for the cluster's GPUs (those a
    `ray up` cluster can scale to count: a cold GPU cluster rehearses on GPUs), and says
    what the preflight will run and where it logs."""
    from orchestrator import cluster
    from orchestrator.progress import console

    console.print(cluster.connect(min_cpus=1 + min(spec.resources.num_workers, MAX_TRAIN_WORKERS)))
    small = shrink(spec, cluster.capacity()["GPU"])
    console.print(
        f"preflight: {CLIPS_PER_CLASS} clip(s) per class and split, clips "
        f"{small.clip.num_frames}x{small.clip.crop_size}x{small.clip.crop_size}, 1 epoch, "
        f"{small.resources.num_workers} workers; MLflow experiment {small.tracking.experiment},"
        f" storage {small.storage.resolved()}"
    )
    return small


@dataclass
class Checklist:
    """What the preflight proved, line by line: (item, ok, detail); and each problem found
    (a malformed row, a missing or undecodable video), in full."""

    lines: list[tuple[str, bool, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, item: str, ok: bool, detail: str) -> None:
        self.lines.append((item, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.lines)


def check_dataset(spec: Spec, small: Spec, checklist: Checklist) -> bool:
    """The full lists read as a job would (every malformed row and missing file at once),
    and every video the preflight will use decoded; False if the data cannot run."""
    d = spec.dataset
    try:
        reports = dataset_lists(d.format, Path(d.root), d.split, given_lists(d))
        splits = load_splits(small.dataset) if not _problems(reports) else {}
    except ManifestError as err:
        checklist.add("dataset", False, str(err))
        return False
    for r in reports:
        detail = f"{len(r.paths)} clips{_per_class(r)}; {r.path}"
        checklist.add(f"dataset {r.name}", not (r.malformed or r.missing), detail)
        checklist.problems += [*r.malformed, *(f"{p}: file not found" for p in r.missing)]
    if not splits:
        return False
    used = [ListReport(name, Path(name), [p for p, _ in m.items], None)
            for name, m in splits.items()]  # fmt: skip
    bad = [(p, why) for r in check_lists(used) for p, why in r.undecodable]
    n = sum(len(r.paths) for r in used)
    checklist.add("dataset decode", not bad, f"{n - len(bad)} of {n} preflight clips decode")
    checklist.problems += [f"{path}: {why}" for path, why in bad]
    return not bad


def given_lists(d: DatasetConfig) -> dict[str, Path]:
    """The lists a spec names, resolved the way its jobs resolve them (relative: the root)."""
    lists = {"train": d.train_list, "test": d.test_list}
    if d.val_list not in (None, "other"):
        lists["val"] = Path(d.val_list)
    return {name: resolve_list(d, name, p) for name, p in lists.items() if p is not None}


def _problems(reports: list[ListReport]) -> int:
    return sum(len(r.malformed) + len(r.missing) for r in reports)


def _per_class(r: ListReport) -> str:
    if r.labels is None:
        return " (unlabelled)"
    counts = [r.labels.count(k) for k in range(len(r.classes))]
    empty = [c for c, n in zip(r.classes, counts, strict=True) if n == 0]
    text = f" over {len(r.classes) - len(empty)} of {len(r.classes)} classes ({min(counts)}.."
    return text + f"{max(counts)} per class)" + (f", none of {', '.join(empty)}" if empty else "")


def check_sweep(spec: Spec, parent_run_id: str, checklist: Checklist) -> None:
    """Each teacher, the control and each student of the preflight sweep (the control
    perhaps reused from an earlier preflight), the tracker and the storage."""
    from orchestrator.compare import with_control

    runs = mlflow.search_runs(
        experiment_names=[spec.tracking.experiment],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        output_format="list",
    )
    runs = with_control(runs, mlflow.get_run(parent_run_id))
    for role in ("teacher", "control", "student"):
        for run in sorted(runs, key=lambda r: r.info.run_name):
            if run.data.tags.get("dlkdd.role") != role:
                continue
            ok = run.info.status == "FINISHED"
            metric = "test_top1" if role == "teacher" else "best_val_top1"
            value = run.data.metrics.get(metric, float("nan"))
            checklist.add(role, ok, f"{run.info.run_name}: {run.info.status}, {metric} {value:.3f}")
    students = [r for r in runs if r.data.tags.get("dlkdd.role") in STUDENT_ROLES]
    seeds = spec.student_seeds()  # a control each; the best student again on the others
    expected = (
        len(spec.sweep.enhancements) + len(seeds) + spec.sweep.confirm_top_k * (len(seeds) - 1)
    )
    checklist.add("students", len(students) == expected,
                  f"{len(students)} of {expected} (one per enhancement, a control per seed, "
                  "the best confirmed on the other seed)")  # fmt: skip
    checklist.add("tracker", True, f"{spec.tracking.uri}, experiment {spec.tracking.experiment}: "
                  f"parent run {parent_run_id} and {len(runs)} nested runs")  # fmt: skip
    exports = [r.data.tags.get("dlkdd.export_dir") for r in runs]
    readable = [e for e in exports if e and is_file(join(e, "meta.json"))]
    detail = f"{spec.storage.resolved()}: {len(readable)} of {len(runs)} exports readable"
    checklist.add("storage", len(readable) == len(runs), detail)


def rehearse_sweep(spec: Spec) -> Checklist:
    """Shrinks the spec, checks its data, runs the shrunk sweep and checks what it left."""
    from orchestrator.sweep import run_sweep

    small = shrunk_on_cluster(spec)
    checklist = Checklist()
    if not check_dataset(spec, small, checklist):
        return checklist
    try:
        parent = run_sweep(small)
    except Exception as err:  # the checklist is the report: say what broke, in one line
        checklist.add("sweep", False, f"{type(err).__name__}: {str(err).splitlines()[0]}")
        return checklist
    check_sweep(small, parent, checklist)
    if checklist.ok:
        _drop_checkpoints(small, checklist)
    return checklist


def _drop_checkpoints(small: Spec, checklist: Checklist) -> None:
    """A passed preflight's checkpoints prove nothing more and weigh GBs (about 10 for
    arid.yaml's r2plus1d_34 jobs): they go; its MLflow runs stay. A failed preflight keeps
    them for inspection."""
    freed = remove(small.storage.resolved())
    checklist.add("clean-up", True, f"{small.storage.resolved()}: checkpoints removed"
                  f" ({freed / 2**30:.1f} GiB); the MLflow runs stay")  # fmt: skip
