"""End-to-end smoke sweep on synthetic data: teachers, the control, students, MLflow,
compare, promote, predict. (A rerun killed and resumed, training no teacher or control and
repeating no trial, is tests/test_scale_out.py's multi-node test, as the cluster runs it.)"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import mlflow
import pytest
import ray
from ray import tune
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.spec import parse_spec
from orchestrator.sweep import run_sweep
from tests.conftest import small_spec
from tests.interrupt import children

pytestmark = pytest.mark.slow

SWEEP = {"enhancements": ["gic", "he"],
         "temperature": {"type": "loguniform", "low": 1, "high": 8},
         "alpha": {"type": "uniform", "low": 0.3, "high": 0.9},
         "num_samples": 2, "scheduler": {"type": "asha", "grace_period": 1},
         "seeds": [0, 1], "confirm_top_k": 1, "teacher_seeds": "each"}  # fmt: skip


@pytest.fixture(scope="module")
def sweep_run(ray_session, train_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep")
    epochs = {"optim": {"epochs": 3}}
    data = small_spec(train_root, work, name="smk", sweep=SWEEP, teacher=epochs, student=epochs)
    spec = parse_spec(data)
    parent = run_sweep(spec)
    return spec, parent, work


@pytest.fixture(autouse=True)
def sweep_store(sweep_run) -> None:
    """Each test reads the sweep's MLflow store through the global URI, which another test
    (a CLI run, a tracker restored onto a new store) may have pointed elsewhere."""
    mlflow.set_tracking_uri(sweep_run[0].tracking.uri)


def test_a_teacher_per_enhancement_and_seed_and_a_control_per_seed(sweep_run) -> None:
    """teacher_seeds: each — the search's teachers on seed 0, the confirmed configuration's
    enhancement on seed 1 too; each student distils from its own seed's teacher."""
    spec, parent, _ = sweep_run
    teachers = children(parent, "teacher")
    [confirm] = [s for s in children(parent, "student") if s.data.tags["dlkdd.phase"] == "confirm"]
    confirmed = confirm.data.tags["dlkdd.enhancement"]
    assert sorted((t.data.tags["dlkdd.enhancement"], t.data.params["seed"]) for t in teachers) == (
        sorted([("gic", "0"), ("he", "0"), (confirmed, "1")]))  # fmt: skip
    teacher_of = {(t.data.tags["dlkdd.enhancement"], t.data.params["seed"]): t.info.run_id
                  for t in teachers}  # fmt: skip
    assert mlflow.get_run(parent).data.tags[f"dlkdd.teacher.{confirmed}.1"] == (
        teacher_of[(confirmed, "1")])  # fmt: skip
    students = children(parent, "student", "control")
    assert len(students) == 5 and all(s.info.status == "FINISHED" for s in students)
    controls = [s for s in students if s.data.tags["dlkdd.control"] == "true"]
    assert sorted(c.data.params["seed"] for c in controls) == ["0", "1"]
    for control in controls:
        assert control.data.tags["dlkdd.role"] == "control"  # MLflow groups it apart
        assert control.data.params["alpha"] == "0.0"
        assert control.data.params["enhancement"] == "none"
        assert "dlkdd.soft_targets" not in control.data.tags
    distilled = [s for s in students if s.data.tags["dlkdd.control"] == "false"]
    for s in distilled:
        mine = teacher_of[(s.data.tags["dlkdd.enhancement"], s.data.params["seed"])]
        assert s.data.tags["dlkdd.teacher_run"] == mine
    # the students read their teacher's soft-target store for their seed, named on the parent
    tags = mlflow.get_run(parent).data.tags
    for s in distilled:
        seed, enhancement = s.data.params["seed"], s.data.tags["dlkdd.enhancement"]
        store = tags[f"dlkdd.soft_targets.{enhancement}" + ("" if seed == "0" else f".{seed}")]
        assert s.data.tags["dlkdd.soft_targets"] == store
        assert s.data.params["distill.soft_targets"] == "store"
    # every teacher wrote its students' store at its end: no store needed a job of its own
    storage = Path(spec.storage.resolved())
    assert len(list((storage / "soft_targets").iterdir())) == 3  # gic, he on seed 0; seed 1's
    assert not list(storage.glob("soft-targets-*"))


def test_the_best_configuration_is_confirmed_on_the_other_seed(sweep_run, tmp_path) -> None:
    """After the search (seed 0), the best full-budget configuration trains again on seed
    1 at full budget beside seed 1's control; compare pairs the two seeds' gains."""
    spec, parent, _ = sweep_run
    runs = children(parent, "student")
    search = [r for r in runs if r.data.tags["dlkdd.phase"] == "search"]
    [confirm] = [r for r in runs if r.data.tags["dlkdd.phase"] == "confirm"]
    assert {r.data.params["seed"] for r in search} == {"0"} and confirm.data.params["seed"] == "1"
    client = mlflow.MlflowClient()

    def epochs(run) -> int:
        return len(client.get_metric_history(run.info.run_id, "val_top1"))

    def recipe(run) -> tuple[str, ...]:
        return tuple(run.data.tags[k] for k in ("dlkdd.enhancement", "dlkdd.temperature",
                                                "dlkdd.alpha"))  # fmt: skip

    full = [r for r in search if epochs(r) == 3]
    top = max(r.data.metrics["best_val_top1"] for r in full)
    assert recipe(confirm) in {recipe(r) for r in full if r.data.metrics["best_val_top1"] == top}
    assert epochs(confirm) == 3  # never early-stopped
    [control_1] = [r for r in children(parent, "control") if r.data.params["seed"] == "1"]
    assert mlflow.get_run(parent).data.tags["dlkdd.control_run.1"] == control_1.info.run_id
    result = CliRunner().invoke(app, ["compare", "smk", "--tracking-uri", spec.tracking.uri,
                                      "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "ablation_configs.csv").open() as f:
        configs = list(csv.DictReader(f))
    [confirmed] = [c for c in configs if c["seeds"] == "0,1" and c["kind"] == "student"]
    assert confirmed["enhancement"] == confirm.data.tags["dlkdd.enhancement"]
    assert confirmed["gain_pairs"] == "2" and confirmed["gain_verdict"] != "1 seed"
    [control_row] = [c for c in configs if c["kind"] == "control"]
    assert control_row["seeds"] == "0,1"


def test_every_epoch_is_one_point_of_a_students_validation_curve(sweep_run) -> None:
    """The final report repeats the best epoch's val_* for Tune; MLflow gets each epoch's
    value once (no second point at the last step) and the best as best_val_top1."""
    spec, parent, _ = sweep_run
    client = mlflow.MlflowClient()
    for student in children(parent, "student"):
        history = client.get_metric_history(student.info.run_id, "val_top1")
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), (student.info.run_name, steps)
        assert student.data.metrics["best_val_top1"] == max(m.value for m in history)


def test_the_control_is_a_full_budget_job_outside_the_search(sweep_run) -> None:
    """ASHA (grace 1 epoch) and the searcher see only distilled students; the control is a
    job of its own, fingerprinted like a teacher, trained for the students' whole budget."""
    spec, parent, _ = sweep_run
    [control] = [r for r in children(parent, "control") if r.data.params["seed"] == "0"]
    assert mlflow.get_run(parent).data.tags["dlkdd.control_run"] == control.info.run_id
    assert control.info.run_name == "control seed=0"  # as a student's: what it is, its seed
    history = mlflow.MlflowClient().get_metric_history(control.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]  # spec.student.optim.epochs
    trials = tune.ExperimentAnalysis(
        f"{spec.storage.resolved()}/{mlflow.get_run(parent).data.tags['dlkdd.tune_name']}"
    ).trials
    assert len(trials) == spec.sweep.num_samples
    assert all(t.config["alpha"] > 0 for t in trials)


def test_every_run_carries_its_recipe_and_no_unused_settings(sweep_run, teacher_run) -> None:
    """Students carry their full recipe (not only T, alpha, enhancement) under the same keys
    as a CLI-trained job; a teacher logs no distill.* and a student no enhancement.*."""
    spec, parent, _ = sweep_run
    mlflow.set_tracking_uri(spec.tracking.uri)  # teacher_run's CLI may have pointed elsewhere
    [teacher, *_] = children(parent, "teacher")
    cli = mlflow.MlflowClient(f"sqlite:///{teacher_run[0].parent / 'mlflow.db'}")
    experiment = cli.get_experiment_by_name("dlkdd").experiment_id
    [cli_teacher] = cli.search_runs([experiment], "tags.`dlkdd.role` = 'teacher'")
    assert set(teacher.data.params) == set(cli_teacher.data.params)
    assert not any(k.startswith("distill.") for k in teacher.data.params)
    assert not any(k.startswith("distill.") for k in mlflow.get_run(parent).data.params)
    for student in children(parent, "student", "control"):
        p = student.data.params
        assert {"role", "seed", "temperature", "alpha", "enhancement"} <= set(p)
        assert p["optim.lr"] == str(spec.student.optim.lr) and p["model.arch"] == "tiny"
        assert p["optim.epochs"] == "3" and p["role"] == student.data.tags["dlkdd.role"]
        assert not any(k.startswith("enhancement.") for k in p)
        assert student.data.tags["mlflow.user"] and student.data.tags["mlflow.source.name"]
    # every job names its data as MLflow dataset inputs, with the same content digests
    digests = set()
    for run in [*children(parent, "teacher"), *children(parent, "student", "control")]:
        inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
        named = {d.dataset.name: d.dataset.digest for d in inputs}
        assert sorted(named) == ["csv split 1 test", "csv split 1 train", "csv split 1 val"]
        digests.add(tuple(sorted(named.items())))
    assert len(digests) == 1


def test_teacher_runs_span_their_training(sweep_run) -> None:
    """Teachers are logged after they trained (concurrently); their runs are still dated
    from the start of training, so MLflow shows how long each took."""
    spec, parent, _ = sweep_run
    for teacher in children(parent, "teacher"):
        run_dir = Path(teacher.data.tags["dlkdd.export_dir"]).parents[1]
        saved_ms = [c.stat().st_mtime * 1000 for c in run_dir.glob("checkpoint_*")]
        assert saved_ms, run_dir
        assert teacher.info.start_time < min(saved_ms) < max(saved_ms) < teacher.info.end_time


def test_cluster_resources_are_free_after_the_sweep(sweep_run) -> None:
    """Within a minute: a Train run killed with its finished trial is cleaned up by Train's
    placement-group cleaner, which polls every second."""
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU") != ray.cluster_resources().get("CPU"):
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(1)


def test_compare_numbers_equal_mlflow_metrics(sweep_run, tmp_path) -> None:
    spec, parent, _ = sweep_run
    result = CliRunner().invoke(app, ["compare", "smk", "--tracking-uri", spec.tracking.uri,
                                      "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "ablation.csv").open() as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    for run in children(parent, "student", "control"):
        assert float(rows[run.info.run_id]["val_top1"]) == run.data.metrics["best_val_top1"]
    assert (tmp_path / "gain_per_enhancement.png").stat().st_size > 1000
    # the parent run's headline: the configuration best on mean validation, and the control
    summary = mlflow.get_run(parent).data.metrics
    with (tmp_path / "ablation_configs.csv").open() as f:
        configs = list(csv.DictReader(f))
    best = max((c for c in configs if c["kind"] == "student"), key=lambda c: float(c["val_mean"]))
    [control] = [c for c in configs if c["kind"] == "control"]
    assert summary["control_val_top1_mean"] == pytest.approx(float(control["val_mean"]))
    assert summary["best_student_val_top1_mean"] == pytest.approx(float(best["val_mean"]))
    assert summary["best_student_gain_test_mean"] == pytest.approx(float(best["gain_test_mean"]))
    assert summary["best_student_seeds"] == len(best["seeds"].split(","))


def test_promote_best_refuse_worse_force_then_predict(sweep_run, train_root, tmp_path) -> None:
    spec, parent, _ = sweep_run
    uri = ["--tracking-uri", spec.tracking.uri]
    client = mlflow.MlflowClient(spec.tracking.uri)

    def champion():
        return client.get_model_version_by_alias("dlkdd-student", "champion").run_id

    result = CliRunner().invoke(app, ["promote", "smk", *uri])
    assert result.exit_code == 0, result.output
    students = sorted(
        children(parent, "student", "control"), key=lambda r: r.data.metrics["best_val_top1"]
    )
    # configurations rank by their mean over seeds; the best seed's run is registered
    recipe = ("dlkdd.role", "dlkdd.enhancement", "dlkdd.temperature", "dlkdd.alpha")
    config_of = {r.info.run_id: tuple(r.data.tags.get(k) for k in recipe) for r in students}
    groups: dict[tuple, list[float]] = {}
    for r in students:
        groups.setdefault(config_of[r.info.run_id], []).append(r.data.metrics["best_val_top1"])
    mean = {k: sum(v) / len(v) for k, v in groups.items()}
    top, best = max(mean.values()), champion()
    assert mean[config_of[best]] == pytest.approx(top)
    assert mlflow.get_run(best).data.metrics["best_val_top1"] == max(groups[config_of[best]])
    version = client.get_model_version_by_alias("dlkdd-student", "champion")
    assert best in version.description and "best_val_top1" in version.description
    assert float(version.tags["dlkdd.best_val_top1_mean"]) == pytest.approx(top, abs=1e-4)
    # the logged model is named for what it is and carries its run's scores
    model = mlflow.get_logged_model(version.source.removeprefix("models:/"))
    run = mlflow.get_run(best)
    assert model.name.startswith(f"{run.data.tags['dlkdd.role']}-")
    assert model.name.endswith(f"-seed{run.data.params['seed']}")
    scores = {m.key: m.value for m in model.metrics}
    assert scores["best_val_top1"] == run.data.metrics["best_val_top1"] and "test_top1" in scores
    history = client.get_metric_history(best, "best_val_top1")
    assert len(history) == 1  # linking the score to the model added no point to the run
    again = CliRunner().invoke(app, ["promote", "smk", *uri])  # idempotent
    assert again.exit_code == 0 and "v1" in again.output
    # the lowest run scores no more than any configuration's mean, the champion's too
    worst = next(r.info.run_id for r in students if r.info.run_id != best)
    refused = CliRunner().invoke(app, ["promote", "smk", "--run", worst, *uri])
    assert refused.exit_code == 1 and "not promoted" in refused.output
    assert champion() == best
    forced = CliRunner().invoke(app, ["promote", "smk", "--run", worst, "--force", *uri])
    assert forced.exit_code == 0 and champion() == worst
    back = CliRunner().invoke(app, ["promote", "smk", "--force", *uri])
    assert back.exit_code == 0 and champion() == best

    video = next((train_root / "videos/fall").glob("test_*.mp4"))
    result = CliRunner().invoke(app, ["predict", str(video), *uri])
    assert result.exit_code == 0, result.output
    assert re.search(r"test_\w+\.mp4: (rise|fall|sway|pulse) [01]\.\d\d", result.output)
    unlabelled = tmp_path / "validation_pub.csv"  # UG2's public list: VideoID,Video, no label
    unlabelled.write_text(f"VideoID,Video\n0,fall/{video.name}\n1,rise/missing.mp4\n")
    args = ["predict", "--list", str(unlabelled), "--root", str(train_root / "videos"), *uri]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # the missing video is named, the other classified
    assert re.search(r"test_\w+\.mp4: (rise|fall|sway|pulse) [01]\.\d\d", result.output)
    assert "missing.mp4" in result.output
