"""Promotion in the MLflow model registry: aliases, not stages; lineage as version tags."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.compare import parent_run
from orchestrator.tracking import STUDENT_ROLES

ALIAS = "champion"
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


def higher_is_better(metric: str) -> bool:
    """Accuracies rank high-first, losses low-first."""
    return "loss" not in metric


def candidate(
    experiment_id: str, sweep: str, metric: str, run_id: str | None
) -> mlflow.entities.Run:
    """The sweep's best finished student by `metric`, or the named one of its students."""
    parent = parent_run(experiment_id, sweep)
    order = "DESC" if higher_is_better(metric) else "ASC"
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and "
        "attributes.status = 'FINISHED'",
        order_by=[f"metrics.{metric} {order}"],
        output_format="list",
    )
    runs = [r for r in runs if r.data.tags.get("dlkdd.role") in STUDENT_ROLES]
    runs = [r for r in runs if metric in r.data.metrics]
    if run_id is not None:
        runs = [r for r in runs if r.info.run_id == run_id]
        if not runs:
            raise ValueError(f"run {run_id} is not a finished student of sweep {sweep!r}")
    if not runs:
        raise ValueError(f"sweep {sweep!r} has no finished student with metric {metric!r}")
    return runs[0]


def promote(
    experiment_id: str, sweep: str, metric: str, name: str, force: bool, run_id: str | None = None
) -> Promotion:
    """Registers the candidate student (once) and moves `champion` to it only if it beats
    the current champion's `metric` (or with `force`)."""
    client = MlflowClient()
    run = candidate(experiment_id, sweep, metric, run_id)
    score = run.data.metrics[metric]
    version = _version_of(client, name, run.info.run_id) or _register(client, name, run, metric)
    worst = float("-inf") if higher_is_better(metric) else float("inf")
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
        current_score = client.get_run(current.run_id).data.metrics.get(metric, worst)
        previous = (current.version, current_score)
    except MlflowException:
        previous = (None, None)
    beats = previous[0] is None or (
        score > previous[1] if higher_is_better(metric) else score < previous[1]
    )
    better = beats or previous[0] == version
    if better or force:
        client.set_registered_model_alias(name, ALIAS, version)
    return Promotion(version, run.info.run_id, score, previous[0], previous[1], better or force)


def _version_of(client: MlflowClient, name: str, run_id: str) -> str | None:
    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return found[0].version if found else None


def _register(client: MlflowClient, name: str, run, metric: str) -> str:
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version
    for key in LINEAGE:
        if key in run.data.tags:
            client.set_model_version_tag(name, version, key, run.data.tags[key])
    client.set_model_version_tag(name, version, f"dlkdd.{metric}", str(run.data.metrics[metric]))
    return version
