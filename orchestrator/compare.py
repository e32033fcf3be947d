"""The ablation table of a sweep, read back from MLflow: control, teachers, students, gains."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from orchestrator.intervals import config_rows
from orchestrator.spec import key_base
from orchestrator.tracking import STUDENT_ROLES

COLUMNS = (
    "kind",
    "enhancement",
    "temperature",
    "alpha",
    "seed",
    "epochs",
    "val_top1",
    "test_top1",
    "test_mean_class",
    "gain_val",
    "gain_test",
    "run_id",
)
CONTROL_TAG = "dlkdd.control_run"  # on the parent: its control, trained or reused
# (the search seed's; the confirm runs' seeds' controls as dlkdd.control_run.<seed>)


def find_parent(
    experiment_id: str, sweep: str, unfinished_only: bool
) -> mlflow.entities.Run | None:
    status = " and attributes.status != 'FINISHED'" if unfinished_only else ""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`dlkdd.sweep_parent` = '{sweep}'{status}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def parent_run(experiment_id: str, sweep: str) -> mlflow.entities.Run:
    """A sweep by name (its latest parent run) or by parent run id."""
    run = find_parent(experiment_id, sweep, unfinished_only=False)
    if run is None:
        try:
            run = MlflowClient().get_run(sweep)
        except Exception:
            raise ValueError(f"no sweep named or with run id {sweep!r} in MLflow") from None
    return run


def compared_runs(experiment_id: str, parent: mlflow.entities.Run) -> list[mlflow.entities.Run]:
    """A sweep's finished students and its control, which this sweep trained (a nested run)
    or reused from an earlier one (named by the parent's tag)."""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and "
        "attributes.status = 'FINISHED'",
        output_format="list",
    )
    return with_control([r for r in runs if r.data.tags.get("dlkdd.role") in STUDENT_ROLES],
                        parent)  # fmt: skip


def with_control(runs: list[mlflow.entities.Run], parent: mlflow.entities.Run) -> list:
    """`runs` (nested runs of `parent`) and the parent's controls (one per seed) that are
    not among them: reused from an earlier sweep, a control is nested under its parent."""
    tags = parent.data.tags
    controls = {v for k, v in tags.items() if k == CONTROL_TAG or k.startswith(CONTROL_TAG + ".")}
    have = {r.info.run_id for r in runs}
    return [*runs, *(MlflowClient().get_run(c) for c in sorted(controls - have))]


def ablation_rows(experiment_id: str, sweep: str) -> list[dict]:
    parent = parent_run(experiment_id, sweep)
    rows = [run_row(run) for run in compared_runs(experiment_id, parent)]
    controls = {r["seed"]: r for r in rows if r["kind"] == "control"}
    nan = float("nan")
    for row in rows:  # paired: against the control of the same seed
        control = controls.get(row["seed"])
        row["gain_val"] = row["val_top1"] - control["val_top1"] if control else nan
        row["gain_test"] = row["test_top1"] - control["test_top1"] if control else nan
    teacher_ids = {
        k.split(".", 2)[2]: v for k, v in parent.data.tags.items() if k.startswith("dlkdd.teacher.")
    }
    for key, run_id in sorted(teacher_ids.items()):
        teacher = run_row(MlflowClient().get_run(run_id))
        kind = {"kind": "teacher", "enhancement": key_base(key)}
        rows.append(teacher | kind | {"gain_val": nan, "gain_test": nan})
    order = {"control": 0, "student": 1, "teacher": 2}
    rows.sort(key=lambda r: (order[r["kind"]], r["enhancement"], -r["val_top1"]))
    return rows


def run_row(run: mlflow.entities.Run) -> dict:
    """A run's row (a student, the control or a teacher): its configuration, seed, epochs
    trained (ASHA may stop a student early) and scores."""
    tags, m = run.data.tags, run.data.metrics
    epochs = MlflowClient().get_metric_history(run.info.run_id, "val_top1")
    return {
        "kind": tags["dlkdd.role"],
        "enhancement": tags.get("dlkdd.enhancement", ""),
        "temperature": float(tags.get("dlkdd.temperature", "nan")),
        "alpha": float(tags.get("dlkdd.alpha", "nan")),
        "seed": int(run.data.params.get("seed", 0)),
        "epochs": len({e.step for e in epochs}),
        "val_top1": best_val(m),
        "test_top1": m.get("test_top1", float("nan")),
        "test_mean_class": m.get("test_mean_class", float("nan")),
        "run_id": run.info.run_id,
    }


def summary(experiment_id: str, parent_run_id: str) -> dict[str, float]:
    """The sweep's headline for its parent run, ranked as `compare` and `promote` rank: the
    distilled configuration best on mean validation over its seeds, its mean test top-1 and
    its mean test gain paired with the control of each seed (with the 95 % interval's ends
    from 2 seeds on), and the control's means."""
    configs = config_rows(ablation_rows(experiment_id, parent_run_id))
    out: dict[str, float] = {}
    control = next((c for c in configs if c["kind"] == "control"), None)
    if control:
        out |= {"control_val_top1_mean": control["val_mean"],
                "control_test_top1_mean": control["test_mean"]}  # fmt: skip
    students = [c for c in configs if c["kind"] == "student" and math.isfinite(c["val_mean"])]
    if students:
        best = max(students, key=lambda c: c["val_mean"])
        gain = best["_gain"]
        out |= {"best_student_val_top1_mean": best["val_mean"],
                "best_student_test_top1_mean": best["test_mean"],
                "best_student_gain_test_mean": gain.mean,
                "best_student_gain_test_ci_low": gain.low,
                "best_student_gain_test_ci_high": gain.high,
                "best_student_seeds": float(len(best["seeds"].split(",")))}  # fmt: skip
    return {k: v for k, v in out.items() if math.isfinite(v)}


def best_val(metrics: dict[str, float]) -> float:
    """Validation top-1 of the exported (best-epoch) weights, for teachers and students
    alike; runs of older dlkdd versions logged it only as their last val_top1."""
    return metrics.get("best_val_top1", metrics.get("val_top1", float("nan")))


def write_csv(rows: list[dict], path: Path, columns: tuple[str, ...] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
