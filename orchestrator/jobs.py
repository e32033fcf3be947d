"""One teacher or student job as a Ray Train TorchTrainer, and where its outputs live."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from orchestrator.spec import Resources
from trainers.config import JobConfig
from trainers.loop import EXPORT_DIR, train_func


@dataclass
class JobResult:
    """What the driver needs of a finished job: history, final metrics, the export."""

    name: str
    history: list[dict[str, float]]
    final: dict[str, float]
    export_dir: Path | None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def scaling(resources: Resources) -> ScalingConfig:
    return ScalingConfig(
        num_workers=resources.num_workers,
        use_gpu=resources.gpus_per_worker > 0,
        resources_per_worker={
            "CPU": resources.cpus_per_worker,
            **({"GPU": resources.gpus_per_worker} if resources.gpus_per_worker else {}),
        },
    )


def trainer(
    job: JobConfig,
    resources: Resources,
    storage: str,
    name: str,
    callbacks: list | None = None,
) -> TorchTrainer:
    """A TorchTrainer that resumes by itself when (storage, name) already holds a run."""
    return TorchTrainer(
        train_func,
        train_loop_config=job.model_dump(mode="json"),
        scaling_config=scaling(resources),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=resources.max_failures),
            callbacks=callbacks or [],
        ),
    )


def result_of(name: str, result) -> JobResult:
    """Ray's Result -> JobResult; the export sits in the final checkpoint."""
    frame = result.metrics_dataframe
    rows = [] if frame is None else frame.to_dict("records")
    is_final = [r.get("done") == 1 for r in rows]  # epoch rows carry NaN there
    history = [_clean(r) for r, f in zip(rows, is_final, strict=True) if not f]
    final = next((_clean(r) for r, f in zip(rows, is_final, strict=True) if f), {})
    export_dir = None
    if result.checkpoint is not None and final:
        export_dir = Path(result.checkpoint.path) / EXPORT_DIR
    error = None if result.error is None else str(result.error).splitlines()[0]
    return JobResult(name, history, final, export_dir, error)


def _clean(row: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics only, without the NaN fillers of a mixed-schema dataframe."""
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, int | float) and v == v and not k.startswith("_")
    }


def run_job(job: JobConfig, resources: Resources, storage: str, name: str) -> JobResult:
    """Runs (or resumes) a job to its end and returns what it produced."""
    try:
        result = trainer(job, resources, storage, name).fit()
    except Exception as err:  # TrainingFailedError carries the worker's traceback
        return JobResult(name, [], {}, None, error=_first_line(err))
    return result_of(name, result)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[-1] if text else type(err).__name__
