"""One teacher or student job as a Ray Train TorchTrainer, and where its outputs live."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import (
    PlacementGroupCleanerCallback,
)

from orchestrator.cluster import capacity
from orchestrator.pg_cleaner import SharedCleanerCallback
from orchestrator.spec import Resources
from trainers import export
from trainers.config import JobConfig
from trainers.loop import EXPORT_DIR, HISTORY_FILE, PHASES_FILE, STATE_FILE, train_func
from trainers.process_group import ProcessGroupConfig
from trainers.storage import join, local_copy, newest_holding, read_text

SLOTS_RECHECK_S = 5.0  # how often queued jobs look for a node that has joined


@dataclass
class JobResult:
    """What the driver needs of a finished job: history, final metrics, the export."""

    name: str
    history: list[dict[str, float]]
    final: dict[str, float]
    export_dir: Path | None  # a local copy (downloaded when storage is a URI)
    export_location: str | None = None  # where later stages read it: a path or a URI
    error: str | None = None


def scaling(resources: Resources) -> ScalingConfig:
    return ScalingConfig(
        num_workers=resources.num_workers,
        use_gpu=resources.gpus_per_worker > 0,
        resources_per_worker={
            "CPU": resources.cpus_per_worker,
            **({"GPU": resources.gpus_per_worker} if resources.gpus_per_worker else {}),
        },
    )


def fitting(resources: Resources, cluster: dict[str, float], trial_cpus: int = 0) -> int:
    """How many jobs of this size `cluster` holds at once (at least one). Given what an
    autoscaling cluster can grow to, jobs beyond its current nodes wait for new ones, up to
    `resources.worker_start_attempts` x 60 s each (raise it where nodes boot slowly)."""
    r = resources
    fits = int(cluster.get("CPU", 0) // (trial_cpus + r.num_workers * r.cpus_per_worker))
    if r.gpus_per_worker:
        fits = min(fits, int(cluster.get("GPU", 0) // (r.num_workers * r.gpus_per_worker)))
    return max(fits, 1)


def jobs_at_once(resources: Resources, trial_cpus: int = 0) -> int:
    """How many jobs of a study (teachers, stores, trials with `trial_cpus` for their Tune
    function) may run now: the spec's cap, else as many as the cluster holds or can scale
    to (cluster.capacity); asked again as nodes arrive."""
    return resources.max_concurrent_trials or fitting(resources, capacity(), trial_cpus)


class JobTrainer(TorchTrainer):
    """Ray's TorchTrainer, less three costs of each run's start: its controller imports no
    torch (trainers/process_group.py), one placement-group cleaner serves all runs instead
    of a new one per run (orchestrator/pg_cleaner.py), and no actor is started to hand out
    Ray Dataset shards, which dlkdd's jobs do not use: they read their own clips."""

    def __init__(
        self, *args: Any, torch_config: ProcessGroupConfig | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("datasets"):
            raise ValueError("JobTrainer runs take no Ray Datasets; use Ray's TorchTrainer")
        super().__init__(*args, torch_config=torch_config or ProcessGroupConfig(), **kwargs)

    def _create_default_callbacks(self) -> list:
        """Train's callbacks less its datasets callback (its DatasetManager actor, one more
        process per run, is 1.6 CPU-s of a tiny job on 2 cores) and with our cleaner in
        place of Train's, first: a group is watched before the process group is set up,
        where a controller may hang or die."""
        dropped = (PlacementGroupCleanerCallback, DatasetsCallback)
        return [SharedCleanerCallback()] + [
            c for c in super()._create_default_callbacks() if not isinstance(c, dropped)
        ]


def trainer(
    job: JobConfig,
    resources: Resources,
    storage: str,
    name: str,
    callbacks: list | None = None,
) -> TorchTrainer:
    """The teacher or student job's TorchTrainer; it resumes by itself when (storage, name)
    already holds a run."""
    return torch_trainer(train_func, job.model_dump(mode="json"), resources, storage, name,
                         callbacks)  # fmt: skip


def torch_trainer(
    func: Callable[[dict], None],
    config: dict[str, Any],
    resources: Resources,
    storage: str,
    name: str,
    callbacks: list | None = None,
) -> TorchTrainer:
    """A TorchTrainer running `func(config)` on the spec's workers.

    Its controller checks the workers every 0.5 s rather than Ray's 2 s (a Ray of our own:
    0.1 s, cluster.OWN_RAY_ENV): it takes one report per check, and a job's last epoch and
    final reports, then its end, wait three checks (6 s at Ray's interval;
    bench/job_overhead.py). Train passes the setting from here to controller and workers."""
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    return JobTrainer(
        func,
        train_loop_config=config,
        scaling_config=scaling(resources),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(
                max_failures=resources.max_failures,
                controller_failure_limit=resources.worker_start_attempts - 1,
            ),
            callbacks=callbacks or [],
        ),
    )


def fit(trainer: TorchTrainer):
    """`trainer.fit()`, leaving Ctrl-C as it was. On a process's main thread fit() installs
    a SIGINT handler that holds its controller's handle, so in a reused Ray worker (a
    sweep's teacher or store task) the TrainController actor outlived its run."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        return trainer.fit()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def result_of(storage: str, name: str, result) -> JobResult:
    """Ray's Result -> JobResult, read back from storage: the final checkpoint holds the
    export and every epoch's metrics (Ray keeps only the last checkpoints' metrics)."""
    final = dict(result.metrics or {})
    done = finished(storage, name) if result.error is None and final.get("job_done") else None
    if done is None:
        error = str(result.error or "job ended without its final report").splitlines()[0]
        return JobResult(name, [], final, None, error=with_holders(error))
    return done


def finished(storage: str, name: str) -> JobResult | None:
    """The job's result if it already ran to its end in storage (its final checkpoint holds
    the export), read from there whatever node wrote it; also what a rerun after a crash
    returns rather than training again."""
    checkpoint = newest_holding(join(storage, name), f"{EXPORT_DIR}/{export.META_FILE}")
    if checkpoint is None:
        return None
    local = local_copy(checkpoint)
    history = json.loads((local / HISTORY_FILE).read_text())
    metrics = export.read_meta(local / EXPORT_DIR)["metrics"]
    if (local / PHASES_FILE).is_file():  # jobs of older dlkdd versions have none
        metrics |= json.loads((local / PHASES_FILE).read_text())
    return JobResult(name, history, metrics, local / EXPORT_DIR, join(checkpoint, EXPORT_DIR))


def progress(storage: str, name: str) -> dict[str, float] | None:
    """A running job's epochs done and its last validation top-1, from its newest epoch
    checkpoint in storage (whichever node runs it); None before the first, or while Ray
    writes or prunes the one listed."""
    try:
        checkpoint = newest_holding(join(storage, name), STATE_FILE)
        if checkpoint is None:
            return None
        state = json.loads(read_text(join(checkpoint, STATE_FILE)))
    except (OSError, ValueError):
        return None
    last = state["history"][-1] if state["history"] else {}
    return {"epoch": state["epoch"], "val_top1": last.get("val_top1")}


def run_job(job: JobConfig, resources: Resources, storage: str, name: str) -> JobResult:
    """Runs (or resumes) a job to its end and returns what it produced."""
    if done := finished(storage, name):
        return done
    try:
        result = fit(trainer(job, resources, storage, name))
    except Exception as err:  # TrainingFailedError carries the worker's traceback
        return JobResult(name, [], {}, None, error=failure(err))
    return result_of(storage, name, result)


def with_holders(error: str) -> str:
    """A worker-group start timeout says who holds the cluster's resources: each reserved
    placement group's bundles and the live actors in it (the State API, when it answers)."""
    if "worker group startup timed out" not in error:
        return error
    groups = {g: info for g, info in ray.util.placement_group_table().items()
              if info["state"] == "CREATED"}  # fmt: skip
    try:
        from ray.util.state import list_actors

        alive = list_actors(filters=[("state", "=", "ALIVE")], detail=True, timeout=10)
    except Exception:  # no dashboard, or it does not answer: bundles only
        alive = []
    lines = []
    for group, info in groups.items():
        actors = sorted(a.class_name for a in alive if a.placement_group_id == group)
        bundles = ", ".join(str(b) for b in info["bundles"].values())
        lines.append(f"  placement group {group[:12]}: {bundles}; actors: "
                     f"{', '.join(actors) or 'none alive'}")  # fmt: skip
    free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
    return "\n".join([error, f"free now: {free}; reserved by:", *lines])


def failure(err: BaseException) -> str:
    """What a failed fit() says in one line (Train's errors end with the cause), with the
    resource holders when its workers could not start."""
    text = str(err).strip()
    return with_holders(text.splitlines()[-1] if text else type(err).__name__)


def in_turn(
    launches: dict[Hashable, Callable[[], ray.ObjectRef]],
    slots: Callable[[], int],
    polled: Callable[[list[Hashable]], None] = lambda running: None,
) -> Iterator[tuple[Hashable, Any, int]]:
    """Starts remote calls, at most `slots()` running at once (asked again every few
    seconds, so calls start on nodes as they arrive), and yields (key, result, start time
    in ms) as each ends: a study's teachers, then their soft-target stores. Between
    checks, `polled` is told the keys still running (a live view's cue)."""
    waiting, running = list(launches), {}
    while waiting or running:
        while waiting and len(running) < slots():
            key = waiting.pop(0)
            running[launches[key]()] = (key, int(time.time() * 1000))
        polled([key for key, _ in running.values()])
        done, _ = ray.wait(list(running), num_returns=1, timeout=SLOTS_RECHECK_S)
        if done:
            key, started_ms = running.pop(done[0])
            yield key, ray.get(done[0]), started_ms
