"""Promotion in the MLflow model registry: aliases, not stages; lineage as version tags."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.compare import compared_runs, parent_run, run_row
from orchestrator.intervals import Interval, configuration, interval, per_seed
from orchestrator.tracking import STUDENT_ROLES
from trainers import export

ALIAS = "champion"
MODEL_TAG = "dlkdd.mlflow_model"  # the run's MLflow model's URI, once it is logged
SCORES = {"best_val_top1", "test_top1", "test_mean_class"}  # a logged model's own metrics
LINEAGE = ("dlkdd.enhancement", "dlkdd.temperature", "dlkdd.alpha", "dlkdd.teacher_run",
           "dlkdd.teacher_fingerprint", "dlkdd.sweep", "dlkdd.control")  # fmt: skip


@dataclass
class Promotion:
    version: str
    run_id: str
    score: float
    previous_version: str | None
    previous_score: float | None
    promoted: bool
    seeds: int  # the score is the mean over its configuration's seeds


def higher_is_better(metric: str) -> bool:
    """Accuracies rank high-first, losses low-first."""
    return "loss" not in metric


def candidate(
    experiment_id: str, sweep: str, metric: str, run_id: str | None
) -> tuple[mlflow.entities.Run, dict[str, Interval]]:
    """The sweep's best finished student by `metric` (a configuration run on several seeds
    ranks by its mean over them; its best seed's run is registered), or the student run
    named by `run_id` (any, CLI-trained too); with its configuration's intervals over seeds
    of `metric` and of test top-1."""
    if run_id is not None:
        return named(run_id, metric)
    parent = parent_run(experiment_id, sweep)
    runs = [r for r in compared_runs(experiment_id, parent) if metric in r.data.metrics]
    rows = {r.info.run_id: run_row(r) | {metric: r.data.metrics[metric]} for r in runs}
    config = {run_id: configuration(row) for run_id, row in rows.items()}
    grouped = defaultdict(list)
    for run_id, row in rows.items():
        grouped[config[run_id]].append(row)
    over_seeds = {c: {k: interval(per_seed(group, k)) for k in (metric, "test_top1")}
                  for c, group in grouped.items()}  # fmt: skip
    runs.sort(key=lambda r: (over_seeds[config[r.info.run_id]][metric].mean,
                             r.data.metrics[metric]), reverse=higher_is_better(metric))  # fmt: skip
    if not runs:
        raise ValueError(f"sweep {sweep!r} has no finished student with metric {metric!r}")
    return runs[0], over_seeds[config[runs[0].info.run_id]]


def named(run_id: str, metric: str) -> tuple[mlflow.entities.Run, dict[str, Interval]]:
    """A student run named by id, a sweep's or one `dlkdd train student` made."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise ValueError(f"no run {run_id} in MLflow") from None
    if run.info.status != "FINISHED" or run.data.tags.get("dlkdd.role") not in STUDENT_ROLES:
        raise ValueError(f"run {run_id} is not a finished student (role "
                         f"{run.data.tags.get('dlkdd.role')}, {run.info.status})")  # fmt: skip
    if metric not in run.data.metrics:
        raise ValueError(f"run {run_id} has no metric {metric!r}")
    m = run.data.metrics
    return run, {k: interval([m[k]] if k in m else []) for k in (metric, "test_top1")}


def promote(
    experiment_id: str, sweep: str, metric: str, name: str, force: bool, run_id: str | None = None
) -> Promotion:
    """Registers the candidate student (once) and moves `champion` to it only if its
    configuration's mean `metric` over seeds beats the champion's (or with `force`)."""
    client = MlflowClient()
    run, intervals = candidate(experiment_id, sweep, metric, run_id)
    over_seeds = intervals[metric]
    score = over_seeds.mean
    version = _version_of(client, name, run.info.run_id) or _register(client, name, run, metric)
    for key, value in {f"dlkdd.{metric}_mean": f"{over_seeds.mean:.4f}",
                       f"dlkdd.{metric}_ci95": over_seeds.text(),
                       "dlkdd.seeds": str(over_seeds.n)}.items():  # fmt: skip
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=describe(run, intervals))
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
        previous = (current.version, champion_score(client, current, metric))
    except MlflowException:
        previous = (None, None)
    beats = previous[0] is None or (
        score > previous[1] if higher_is_better(metric) else score < previous[1]
    )
    better = beats or previous[0] == version
    if better or force:
        client.set_registered_model_alias(name, ALIAS, version)
    return Promotion(
        version, run.info.run_id, score, previous[0], previous[1], better or force, over_seeds.n
    )


def champion_score(client: MlflowClient, version, metric: str) -> float:
    """The champion's mean `metric` over its configuration's seeds, as promote tagged it; a
    version registered otherwise (or by older dlkdd) by its run's own value."""
    if (mean := version.tags.get(f"dlkdd.{metric}_mean")) is not None:
        return float(mean)
    worst = float("-inf") if higher_is_better(metric) else float("inf")
    return client.get_run(version.run_id).data.metrics.get(metric, worst)


def _version_of(client: MlflowClient, name: str, run_id: str) -> str | None:
    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return found[0].version if found else None


def _register(client: MlflowClient, name: str, run, metric: str) -> str:
    version = mlflow.register_model(ensure_model(client, run), name).version
    for key in LINEAGE:
        if key in run.data.tags:
            client.set_model_version_tag(name, version, key, run.data.tags[key])
    client.set_model_version_tag(name, version, f"dlkdd.{metric}", str(run.data.metrics[metric]))
    return version


def describe(run, intervals: dict[str, Interval]) -> str:
    """What the registry page says of a version: what it is, where it came from, its run's
    scores and its configuration's means and 95 % intervals over seeds."""
    tags, m, p = run.data.tags, run.data.metrics, run.data.params
    if tags.get("dlkdd.role") == "control":
        what = "Control student (alpha = 0: cross-entropy on original dark video, no teacher)"
    else:
        what = (f"Student distilled from the {tags.get('dlkdd.enhancement')} teacher "
                f"(T = {float(p.get('temperature', 'nan')):.4g}, "
                f"alpha = {float(p.get('alpha', 'nan')):.4g}), "
                "trained on original dark video")  # fmt: skip
    lines = [what, "", f"- run: {run.info.run_id} ({run.info.run_name}), seed {p.get('seed')}"]
    if tags.get("dlkdd.teacher_run"):
        lines.append(f"- teacher run: {tags['dlkdd.teacher_run']}")
    if parent := tags.get("mlflow.parentRunId"):
        lines.append(f"- sweep: {tags.get('dlkdd.sweep', '')} (parent run {parent})")
    lines += [f"- {k}: {m[k]:.4f}" for k in ("best_val_top1", "test_top1", "test_mean_class")
              if k in m]  # fmt: skip
    lines += [f"- {k} of its configuration: " + (
        f"mean {i.mean:.4f} over {i.n} seeds, 95% interval {i.text()}" if i.n > 1
        else "1 seed, no interval") for k, i in intervals.items() if i.n]  # fmt: skip
    return "\n".join(lines)


def ensure_model(client: MlflowClient, run) -> str:
    """Logs a student's MLflow model when it is first registered, from the export its run
    holds: a sweep does not spend the ~6 s per student (bench/job_overhead.py) on models
    only a champion candidate needs, and any student with an export can be promoted.
    Returns the model's URI."""
    if logged := run.data.tags.get(MODEL_TAG):  # older dlkdd: the artifact path "model"
        return logged if ":/" in logged else f"runs:/{run.info.run_id}/{logged}"
    name = model_name(run)
    with tempfile.TemporaryDirectory() as d:
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="export", dst_path=d
        )
        model_id = log_pytorch_model(run.info.run_id, Path(local), name)
    link_scores(client, run, model_id)
    client.set_tag(run.info.run_id, MODEL_TAG, f"models:/{model_id}")
    # logging reopened the finished run; it keeps the end time of its training
    client.set_terminated(run.info.run_id, run.info.status, end_time=run.info.end_time)
    return f"models:/{model_id}"


def model_name(run) -> str:
    """What the logged model is, as MLflow's Models tab lists it: `control-seed0`,
    `student-gic-T2_5-a0_6-seed1` (a model name may hold no '.')."""
    tags, seed = run.data.tags, run.data.params.get("seed", "0")
    if tags.get("dlkdd.role") == "control":
        return f"control-seed{seed}"
    t, a = (float(run.data.params.get(k, "nan")) for k in ("temperature", "alpha"))
    name = f"student-{tags.get('dlkdd.enhancement', 'none')}-T{t:.3g}-a{a:.3g}-seed{seed}"
    return name.replace(".", "_")


def link_scores(client: MlflowClient, run, model_id: str) -> None:
    """The run's scores become the logged model's own metrics (MLflow's Models tab shows
    them): each final value logged again exactly as it was (key, value, time, step) with the
    model's id, which MLflow stores as the same point, so no run chart gains one."""
    metrics = []
    for key in sorted(SCORES & run.data.metrics.keys()):
        last = client.get_metric_history(run.info.run_id, key)[-1]
        metrics.append(Metric(key, last.value, last.timestamp, last.step, model_id=model_id))
    client.log_batch(run.info.run_id, metrics=metrics)


def log_pytorch_model(run_id: str, export_dir: Path, name: str) -> str:
    """The student as an MLflow PyTorch model (loads with mlflow.pytorch.load_model); the
    clip spec and class names ride along as model metadata for `dlkdd predict`. Returns
    the logged model's id.

    Saved as a torch.export program ("pt2"): loading needs neither this package nor pickle.
    The example holds two clips so the batch dimension stays dynamic (one would pin it to 1,
    and multi-view prediction batches views), and the requirement is given so MLflow does
    not spend seconds inferring it on the driver."""
    model, meta = export.load(export_dir)
    clip = meta["clip"]
    example = np.zeros(
        (2, 3, clip["num_frames"], clip["crop_size"], clip["crop_size"]), dtype=np.float32
    )
    with mlflow.start_run(run_id=run_id, nested=True):
        info = mlflow.pytorch.log_model(
            model,
            name=name,
            input_example=example,
            serialization_format="pt2",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            metadata={"dlkdd": json.dumps(meta)},
        )
    return info.model_id
