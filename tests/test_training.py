"""Real Ray Train + DeepSpeed jobs (2 gloo workers on CPU) on synthetic dark video."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from ray.tune import result as tune_result
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.jobs import progress, run_job
from orchestrator.spec import parse_spec
from tests.conftest import small_spec
from trainers import export
from trainers.storage import is_file, local_copy

pytestmark = pytest.mark.slow


def runs(spec_file: Path):
    uri = f"sqlite:///{spec_file.parent / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["dlkdd"], output_format="list")


def test_teacher_beats_chance_and_lands_in_mlflow(teacher_run) -> None:
    spec_file, _ = teacher_run
    [run] = [r for r in runs(spec_file) if r.info.run_name == "teacher gic seed=0"]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_top1"] >= 0.5  # 4 classes: chance is 0.25
    assert run.data.params["enhancement.name"] == "gic"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_top1")
    assert [m.step for m in history] == [1, 2, 3, 4, 5]
    location = run.data.tags["dlkdd.export_dir"]
    assert location.startswith("file://")  # in the spec's storage URI, not a local folder
    meta = export.read_meta(local_copy(location))
    assert meta["input_enhancement"]["name"] == "gic" and meta["arch"] == "tiny"


def test_student_distils_from_the_teacher_run(teacher_run) -> None:
    spec_file, _ = teacher_run
    [teacher] = [r for r in runs(spec_file) if r.info.run_name == "teacher gic seed=0"]
    args = ["train", "student", str(spec_file), "--teacher", teacher.info.run_id,
            "--temperature", "4", "--alpha", "0.7", "--name", "t-student"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [student] = [r for r in runs(spec_file) if r.info.run_name == "t-student"]
    assert student.data.params["distill.alpha"] == "0.7"
    assert student.data.params["distill.soft_targets"] == "store"  # the default
    assert is_file(student.data.tags["dlkdd.soft_targets"])  # its teacher's stored logits
    assert student.data.tags["dlkdd.enhancement"] == "gic"
    assert "test_top1" in student.data.metrics
    model, meta = export.load(local_copy(student.data.tags["dlkdd.export_dir"]))
    assert meta["input_enhancement"] is None and meta["distill"]["temperature"] == 4.0
    # a CLI-trained student is promotable like a sweep's
    uri = f"sqlite:///{spec_file.parent / 'mlflow.db'}"
    args = ["promote", str(spec_file), "--run", student.info.run_id, "--name", "cli-student"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    version = mlflow.MlflowClient(uri).get_model_version_by_alias("cli-student", "champion")
    assert version.run_id == student.info.run_id and "distilled" in version.description


def test_a_sweep_reuses_the_cli_trained_teacher(teacher_run) -> None:
    """`dlkdd train teacher` records the fingerprint a sweep looks for: the sweep's teacher
    step finds that run and trains nothing."""
    import yaml

    from orchestrator import tracking
    from orchestrator.teachers import ensure_references, teacher_jobs

    spec_file, _ = teacher_run
    data = yaml.safe_load(spec_file.read_text())
    data["sweep"] = {"enhancements": ["gic"], "temperature": {"type": "choice", "values": [4]},
                     "alpha": {"type": "choice", "values": [0.5]}}  # fmt: skip
    spec = parse_spec(data)
    [cli] = [r for r in runs(spec_file) if r.info.run_name == "teacher gic seed=0"]
    experiment_id = tracking.connect(spec.tracking.uri, spec.tracking.experiment)
    jobs = teacher_jobs(spec, ["gic"], [spec.seed])
    teachers = ensure_references(spec, jobs, experiment_id, parent_run_id="none: nothing to train")
    assert teachers["gic"].reused and teachers["gic"].run_id == cli.info.run_id


def test_interrupted_job_resumes_from_its_last_epoch(ray_session, train_root, tmp_path) -> None:
    spec = parse_spec(small_spec(train_root, tmp_path, teacher={"optim": {"epochs": 3}}))
    storage = spec.storage.resolved()
    failing = spec.job("teacher", "gic").model_copy(update={"fail_at_epoch": 2})
    first = run_job(failing, spec.resources, storage, "resume-me")
    assert first.error and "injected failure after epoch 2" in first.error
    halfway = progress(storage, "resume-me")  # what a sweep's live view reads mid-job
    second = run_job(spec.job("teacher", "gic"), spec.resources, storage, "resume-me")
    assert second.error is None
    assert second.final["resumed_from_epoch"] == 2  # epochs 1-2 were not redone
    assert [int(h["epoch"]) for h in second.history] == [1, 2, 3]
    assert halfway == {"epoch": 2, "val_top1": second.history[1]["val_top1"]}
    assert progress(storage, "resume-me")["epoch"] == 3
    assert progress(storage, "no-such-job") is None
    assert second.final["epoch"] == 3 and second.export_dir.is_dir()
    # Tune's reserved keys stay out of a job's reports: "done" made Tune stop a sweep trial
    # at its final report, killing its Train controller before it freed the workers' CPUs
    assert not set(second.final) & set(tune_result.AUTO_RESULT_KEYS + (tune_result.DONE,))


def test_corrupt_video_in_training_set_does_not_stop_the_job(
    ray_session, train_root, tmp_path, corrupt_video
) -> None:
    root = tmp_path / "data"
    shutil.copytree(train_root, root)
    shutil.copy(corrupt_video, root / "videos/rise/train_rise_0003.mp4")
    spec = parse_spec(small_spec(root, tmp_path, teacher={"optim": {"epochs": 1}}))
    result = run_job(spec.job("teacher", "identity"), spec.resources, spec.storage.resolved(), "c")
    assert result.error is None, result.error
    assert sum(h["bad_clips"] for h in result.history) >= 1


def test_too_many_bad_videos_fail_clearly(ray_session, train_root, tmp_path, corrupt_video) -> None:
    root = tmp_path / "data"
    shutil.copytree(train_root, root)
    for path in sorted((root / "videos/rise").glob("train_*.mp4"))[:8]:
        shutil.copy(corrupt_video, path)
    spec = parse_spec(small_spec(root, tmp_path, teacher={"optim": {"epochs": 1}},
                                 dataset={"max_bad_fraction": 0.01}))  # fmt: skip
    result = run_job(spec.job("teacher", "identity"), spec.resources, spec.storage.resolved(), "b")
    assert result.error and "max_bad_fraction" in result.error


def test_resume_with_loader_workers_repeats_the_uninterrupted_losses(
    ray_session, train_root, tmp_path
) -> None:
    """Interrupted after epoch 1 and resumed, with persistent DataLoader workers, a job sees
    the same clips and takes the same steps as one that never stopped (fp32 CPU, one seed).
    The losses are bitwise equal here: a difference is a change in data or state, not noise."""
    spec = parse_spec(small_spec(train_root, tmp_path, dataset={"num_workers": 2},
                                 teacher={"optim": {"epochs": 3}}))  # fmt: skip
    storage, job = spec.storage.resolved(), spec.job("teacher", "gic")
    whole = run_job(job, spec.resources, storage, "whole")
    failing = job.model_copy(update={"fail_at_epoch": 1})
    first = run_job(failing, spec.resources, storage, "resumed")
    assert first.error and "injected failure after epoch 1" in first.error
    resumed = run_job(job, spec.resources, storage, "resumed")
    assert whole.error is None and resumed.error is None
    assert resumed.final["resumed_from_epoch"] == 1
    train_loss = [h["train_loss"] for h in whole.history]
    assert [h["train_loss"] for h in resumed.history] == train_loss and len(train_loss) == 3


def test_a_job_whose_workers_cannot_start_fails_naming_the_holder(
    ray_session, train_root, tmp_path, monkeypatch
) -> None:
    """Ray Train waits for a worker group's resources forever by default; a job gets
    `resources.worker_start_attempts` tries of RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S each,
    then fails with a message naming the placement groups that hold the CPUs."""
    from ray.util.placement_group import placement_group, remove_placement_group

    monkeypatch.setenv("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "3")
    spec = parse_spec(small_spec(train_root, tmp_path, teacher={"optim": {"epochs": 1}},
                                 resources={"worker_start_attempts": 2}))  # fmt: skip
    hog = placement_group([{"CPU": 3}])  # of the session's 4: one left, the job needs two
    ray_session.get(hog.ready(), timeout=60)
    try:
        result = run_job(spec.job("teacher", "gic"), spec.resources, spec.storage.resolved(),
                         "starved")  # fmt: skip
    finally:
        remove_placement_group(hog)
    assert result.error and "worker group startup timed out" in result.error
    assert f"placement group {hog.id.hex()[:12]}: {{'CPU': 3.0}}" in result.error


def test_workers_get_deepspeed_without_mlflow_and_with_the_venvs_ninja() -> None:
    """A fresh process (a Train worker) gets DeepSpeed without its autotuner's mlflow
    import, may still import mlflow itself afterwards, and builds DeepSpeed's ops with the
    venv's ninja even when PATH leads elsewhere (as a plain `.venv/bin/dlkdd` run's does)."""
    import os
    import shutil
    import subprocess
    import sys

    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    code = (
        "import shutil, sys\nfrom trainers.loop import imported_deepspeed\n"
        "deepspeed = imported_deepspeed()\nfrom deepspeed.autotuning import autotuner\n"
        "print('mlflow' in sys.modules, autotuner.has_mlflow, deepspeed.initialize.__name__)\n"
        "import mlflow\nprint(mlflow.__name__)\nprint(shutil.which('ninja'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PATH": path}, timeout=120,
                         check=True).stdout.splitlines()  # fmt: skip
    assert out[-3:-1] == ["False False initialize", "mlflow"]  # after DeepSpeed's banner
    assert out[-1] == shutil.which("ninja", path=venv_bin)
