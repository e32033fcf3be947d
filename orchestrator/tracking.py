"""MLflow, written from the driver only (one writer is what SQLite tolerates).

Teacher and student jobs become runs (nested under a sweep's parent run when there is one)
with params, per-epoch metrics, final metrics, lineage tags and the exported model.
"""

from __future__ import annotations

import getpass
import json
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import (
    MLFLOW_DATASET_CONTEXT,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
    MLFLOW_USER,
)

from orchestrator.fingerprint import data_digest
from orchestrator.jobs import JobResult
from trainers.config import DatasetConfig, JobConfig
from trainers.storage import is_file, join, put


class JobFailed(RuntimeError):
    """A tracked job ended with an error; raised inside its run so MLflow marks it FAILED."""


class TrackingError(RuntimeError):
    """The tracking server cannot be used; raised before any training starts."""


EXPERIMENT_NOTE = (
    "Dual-Light Knowledge Distillation for action recognition in dark video (dlkdd). "
    "Each sweep is a parent run; nested under it: one teacher per enhancement (trained on "
    "enhanced video), the control (alpha = 0, cross-entropy on original video) and the "
    "distilled students (original video + the teacher's soft targets). Group by the "
    "dlkdd.role tag; `dlkdd compare SWEEP` writes the ablation table and plots."
)
# its kind: MLflow 3 tells GenAI experiments from model training by it (its UI, where it shows
# no GenAI / Model training switch, opens the experiment's view from it)
EXPERIMENT_TAGS = {"mlflow.note.content": EXPERIMENT_NOTE,
                   "mlflow.experimentKind": "custom_model_development"}  # fmt: skip


def ui_link(server: str, experiment_id: str) -> str:
    """The experiment's runs in MLflow's UI, in its "Model training" view (MLflow 3.17 opens
    a fresh browser in the GenAI view, whatever the experiment's kind)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"


def connect(uri: str, experiment: str) -> str:
    """Points MLflow at `uri`, makes sure it answers, and returns the experiment id."""
    mlflow.set_tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        _probe(uri)
    try:
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            exp_id = client.create_experiment(
                experiment, artifact_location(uri, experiment), tags=EXPERIMENT_TAGS
            )
        else:
            exp_id = found.experiment_id
            for key in EXPERIMENT_TAGS.keys() - found.tags.keys():  # made by an older dlkdd
                client.set_experiment_tag(exp_id, key, EXPERIMENT_TAGS[key])
    except Exception as err:
        raise TrackingError(f"MLflow tracking server {uri} is not usable: {err}") from None
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def artifact_location(uri: str, experiment: str) -> str | None:
    """A local SQLite store keeps its artifacts beside the database file (`mlartifacts/`);
    MLflow's default, `./mlruns` of whatever directory a run starts in, scatters them.
    Servers choose their own (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlartifacts" / experiment).as_uri()


def _probe(uri: str) -> None:
    """Fails in seconds when no server answers (MLflow's own retries would take minutes)."""
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=10).raise_for_status()
    except requests.RequestException as err:
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({type(err).__name__}); start it "
            "(`mlflow server ...`) or fix tracking.uri. Nothing was trained."
        ) from None


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> `a.b.c` params, as MLflow's UI filters them."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


STUDENT_ROLES = ("student", "control")  # the runs a sweep compares and may promote


def role(job: JobConfig) -> str:
    """teacher, student, or control (a student with alpha = 0: plain CE on dark video)."""
    return "control" if job.role == "student" and job.distill.alpha == 0 else job.role


def run_name(job: JobConfig, enhancement: str) -> str:
    """Every job's MLflow run name, whatever started it: what tells it apart in the runs
    table (`teacher gic seed=0`, `control seed=1`, `student gic T=4 a=0.5 seed=0`). The
    fingerprint that makes a job reusable is its `dlkdd.fingerprint` tag and its folder name
    in storage, not part of this name."""
    kind = role(job)
    if kind == "teacher":
        return f"teacher {enhancement} seed={job.seed}"
    if kind == "control":
        return f"control seed={job.seed}"
    d = job.distill
    return f"student {enhancement} T={d.temperature:.3g} a={d.alpha:.3g} seed={job.seed}"


def job_params(job: JobConfig, enhancement: str) -> dict[str, str]:
    """One vocabulary for every job however it was started (CLI or sweep), so MLflow's
    compare view and parallel coordinates work across them: top-level role, seed,
    enhancement (a student's: its teacher's input, `none` for the control) and a student's
    temperature and alpha; then the settings it ran with, flattened. Settings its role does
    not use are left out: a teacher's distill.*, a student's enhancement.*."""
    unused = {"fail_at_epoch", "stop_key", "teacher_dir", "soft_target_store", "soft_targets_for"}
    unused.add("distill" if job.role == "teacher" else "enhancement")
    top: dict[str, Any] = {"role": role(job), "seed": job.seed, "enhancement": enhancement}
    if job.role == "student":
        top |= {"temperature": job.distill.temperature, "alpha": job.distill.alpha}
    settings = flatten(job.model_dump(mode="json", exclude=unused))
    # top-level names win: the job's own `role` says student for the control too
    return {k: v[:500] for k, v in settings.items()} | {k: str(v) for k, v in top.items()}


@contextmanager
def job_run(
    name: str,
    job: JobConfig,
    tags: dict[str, str],
    parent_run_id: str | None = None,
    started_ms: int | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for one job; ends FAILED if the block raises. A nested run opened only
    after its job ran (a sweep's teachers train concurrently, then are logged one by one)
    is dated from `started_ms`, so that MLflow shows how long the job took."""
    tags = {"dlkdd.role": role(job), **tags}
    if job.soft_target_store:
        tags["dlkdd.soft_targets"] = job.soft_target_store
    nested = parent_run_id is not None
    if nested and started_ms is not None:
        child = _dated_child(name, tags, parent_run_id, started_ms)
        run = mlflow.start_run(run_id=child, nested=True)
    else:
        run = mlflow.start_run(run_name=name, parent_run_id=parent_run_id, nested=nested, tags=tags)
    with run:
        mlflow.log_params(job_params(job, tags.get("dlkdd.enhancement", "none")))
        MlflowClient().log_inputs(run.info.run_id, dataset_inputs(job.dataset))
        yield run


def dataset_inputs(dataset: DatasetConfig) -> list[DatasetInput]:
    """The job's three splits as MLflow dataset inputs (the run page's Datasets column):
    named by format, official split and subset, with the digest of their content (as the
    fingerprints read it), so runs on the same data show the same digest wherever it lies."""
    with warnings.catch_warnings():  # "can be interpreted in multiple ways": one local kind
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(dataset.root))
    return [
        DatasetInput(
            MetaDataset(source, f"{dataset.format} split {dataset.split} {subset}",
                        data_digest(dataset, (subset,))[:16])._to_mlflow_entity(),
            [InputTag(MLFLOW_DATASET_CONTEXT, subset)],
        )
        for subset in ("train", "val", "test")
    ]  # fmt: skip


def _dated_child(name: str, tags: dict[str, str], parent_run_id: str, started_ms: int) -> str:
    """Creates a child run with a given start time (fluent start_run always says 'now')."""
    client = MlflowClient()
    return client.create_run(
        client.get_run(parent_run_id).info.experiment_id,
        start_time=started_ms,
        tags={**origin_tags(), **tags, MLFLOW_PARENT_RUN_ID: parent_run_id},
        run_name=name,
    ).info.run_id


def origin_tags() -> dict[str, str]:
    """Who ran it and with what, for runs made through MlflowClient (the fluent API sets
    these itself): MLflow's UI shows them in its User and Source columns."""
    return {MLFLOW_USER: getpass.getuser(), MLFLOW_SOURCE_NAME: "dlkdd",
            MLFLOW_SOURCE_TYPE: "JOB"}  # fmt: skip


def log_result(result: JobResult) -> None:
    """Per-epoch metrics (step = epoch), final metrics and the exported model directory."""
    for row in result.history:
        epoch = int(row.get("epoch", 0))
        mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
    # The final report repeats the best epoch's val_* (kept there for Tune); those series
    # are already logged per epoch, and their best value is `best_val_top1`.
    per_epoch = {k for row in result.history for k in row}
    final = {k: v for k, v in result.final.items()
             if k not in per_epoch | {"job_done", "done", "worker_started_at"}}  # fmt: skip
    if final:
        mlflow.log_metrics(final, step=int(result.final.get("epoch", 0)))
    if result.export_dir is not None:
        mlflow.log_artifacts(str(result.export_dir), artifact_path="export")
        mlflow.set_tag("dlkdd.export_dir", result.export_location or str(result.export_dir))
    if result.error:
        mlflow.set_tag("dlkdd.error", result.error[:5000])
        raise JobFailed(f"{result.name} failed: {result.error}")  # ends the run as FAILED


def export_of(run_id: str, dest: str) -> str:
    """Where every node can read a finished run's export: the storage location its job
    wrote (path or URI), or, when that is gone, its MLflow copy placed at `dest` once."""
    written = mlflow.get_run(run_id).data.tags.get("dlkdd.export_dir")
    if written and is_file(join(written, "meta.json")):
        return written
    if not is_file(join(dest, "meta.json")):
        with tempfile.TemporaryDirectory() as d:
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="export", dst_path=d)
            put(Path(d) / "export", dest)
    return dest
