"""The trainer of dlkdd's jobs: its torch process group set up with no torch in Train's
controller (trainers/process_group.py), and the one placement-group cleaner that its runs
share (orchestrator/pg_cleaner.py)."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray
from ray import tune
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.placement_group import placement_group_table
from ray.util.state import get_actor, list_actors

from orchestrator.jobs import JobTrainer
from orchestrator.pg_cleaner import cleaner
from orchestrator.tune_report import SyncedTuneReportCallback
from tests.controller_probe import TorchInController


def _all_reduce(config: dict) -> dict:
    import torch
    import torch.distributed as dist

    ranks = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(ranks)
    world = int(os.environ["WORLD_SIZE"])  # set for torchrun-style code, as Ray's is
    return {"sum": ranks.item(), "world": world, "backend": dist.get_backend()}


def test_workers_join_one_process_group_and_the_controller_imports_no_torch(ray_session, tmp_path):
    """Two workers all-reduce over gloo as under Ray's TorchConfig, whose controller
    imports torch where dlkdd's does not, and whose run starts a DatasetManager actor."""
    for trainer_class, torch_there, managers in (
        (JobTrainer, "False", 0),
        (TorchTrainer, "True", 1),
    ):
        before = _started("DatasetManager")
        probe = tmp_path / f"{trainer_class.__name__}.torch"
        run = RunConfig(name=trainer_class.__name__, storage_path=str(tmp_path),
                        callbacks=[TorchInController(probe)])  # fmt: skip
        result = trainer_class(_all_reduce, scaling_config=ScalingConfig(num_workers=2),
                               run_config=run).fit()  # fmt: skip
        assert result.return_value == {"sum": 3.0, "world": 2, "backend": "gloo"}
        assert probe.read_text() == torch_there, trainer_class
        assert _started("DatasetManager") - before == managers, trainer_class


def test_job_trainer_takes_no_ray_datasets():
    with pytest.raises(ValueError, match="no Ray Datasets"):
        JobTrainer(_all_reduce, datasets={"train": object()})


def _report_world(config: dict) -> None:
    import torch.distributed as dist

    ray.train.report({"world": dist.get_world_size()})


def _student_like_trial(config: dict) -> None:
    """A sweep trial's job as students.student_trial starts it: its reports reach Tune
    through the callback that the trial's Train controller unpickles."""
    callbacks = [SyncedTuneReportCallback(), TorchInController(config["probe"])]
    run = RunConfig(name="in-tune", storage_path=config["storage"], callbacks=callbacks)
    JobTrainer(_report_world, scaling_config=ScalingConfig(num_workers=2), run_config=run).fit()


def test_a_sweep_trials_controller_imports_no_torch(ray_session, tmp_path):
    probe = tmp_path / "trial.torch"
    space = {"storage": str(tmp_path / "train"), "probe": probe}
    run = tune.RunConfig(storage_path=str(tmp_path / "tune"))
    grid = tune.Tuner(_student_like_trial, param_space=space, run_config=run).fit()
    assert grid[0].metrics["world"] == 2
    assert probe.read_text() == "False"


def _fail_once_then_sleep(config: dict) -> None:
    """Rank 0's first attempt fails, so Train starts a second worker group."""
    first, second = Path(config["first"]), Path(config["second"])
    if ray.train.get_context().get_world_rank() == 0:
        if not first.exists():
            first.touch()
            raise RuntimeError("the first attempt fails")
        second.touch()
    time.sleep(120)


def _until(condition, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def _started(class_name: str) -> int:
    """How many actors of this class this Ray has started."""
    return len(list_actors(filters=[("class_name", "=", class_name)], limit=10000))


def test_a_killed_controllers_workers_are_freed_by_the_shared_cleaner(ray_session, tmp_path):
    """A run's controller killed without clean-up (as with its Tune trial) leaves its
    placement group to the shared cleaner, which removes it: the group of the worker group
    Train restarted after a failure, not the first one. The run starts no cleaner of
    Train's own."""
    before = _started("PlacementGroupCleaner")
    marks = {"first": str(tmp_path / "first"), "second": str(tmp_path / "second")}
    run = RunConfig(name="killed", storage_path=str(tmp_path),
                    failure_config=FailureConfig(max_failures=1))  # fmt: skip
    trainer = JobTrainer(_fail_once_then_sleep, train_loop_config=marks,
                         scaling_config=ScalingConfig(num_workers=2), run_config=run)  # fmt: skip
    failed: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as err:  # the controller's death reaches fit()
            failed.append(err)

    shared = cleaner()
    others = ray.get(shared.watched.remote())
    running = threading.Thread(target=fit)
    running.start()
    _until(lambda: Path(marks["second"]).exists())
    ((controller_id, group),) = _until(lambda: [
        (c, g) for c, g in ray.get(shared.watched.remote()).items()
        if c not in others and placement_group_table(g)["state"] == "CREATED"
    ])  # fmt: skip
    os.kill(get_actor(controller_id).pid, signal.SIGKILL)
    _until(lambda: placement_group_table(group)["state"] == "REMOVED")
    running.join(timeout=60)
    assert failed and not running.is_alive()
    _until(lambda: controller_id not in ray.get(shared.watched.remote()), timeout_s=10)
    assert _started("PlacementGroupCleaner") == before


def test_runs_that_end_well_are_forgotten(ray_session, tmp_path):
    """Runs that end by themselves leave nothing watched, and all share one cleaner."""
    for i in range(2):
        run = RunConfig(name=f"ok-{i}", storage_path=str(tmp_path))
        JobTrainer(
            lambda config: None, scaling_config=ScalingConfig(num_workers=1), run_config=run
        ).fit()
    shared = cleaner()
    _until(lambda: ray.get(shared.watched.remote()) == {}, timeout_s=10)
    alive = list_actors(filters=[("class_name", "=", "SharedPlacementGroupCleaner"),
                                 ("state", "=", "ALIVE")])  # fmt: skip
    assert len(alive) == 1
