"""`dlkdd demo`, the README's first command, run as a user runs it: in an empty folder, on
embedded defaults (smoke.yaml, synthetic data, MLflow in ./mlflow.db), to its last step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_study(ray_session, tmp_path: Path) -> None:
    """In its own process, as a user runs it (it joins the suite's Ray as it would a local
    `ray start`); in-process, MLflow's cached store for the relative `sqlite:///mlflow.db`
    would outlive this folder and break later tests using the same URI elsewhere."""
    dlkdd = Path(sys.executable).parent / "dlkdd"
    result = subprocess.run([str(dlkdd), "demo"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=1500)  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    # it classified its four dark test clips with the promoted student
    assert sum(line.startswith("demo_data/videos/") for line in result.stdout.splitlines()) == 4
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("dlkdd-student", "champion")
    # the best model on dark video: a distilled student, or the control when none beats it
    assert client.get_run(champion.run_id).data.tags["dlkdd.role"] in ("student", "control")
    assert "best_val_top1 of its configuration: " in champion.description
    # MLflow's UI is pointed at its runs table (MLflow 3 opens in its GenAI view otherwise)
    experiment = client.get_experiment_by_name("dlkdd")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"#/experiments/{experiment.experiment_id}?workflowType=machine_learning"
    assert link in result.stdout.replace("\n", "")
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    assert {"teacher gic seed=0", "teacher he seed=0", "control seed=0", "control seed=1"} <= names
    assert (tmp_path / "dlkdd_reports" / "smoke" / "gain_per_enhancement.png").is_file()
    # a clean console: the live trial table, not Tune's status tables, Ray's worker lines or
    # DeepSpeed's banner; those are in the log file it names
    shown = result.stdout + result.stderr
    [log] = (tmp_path / "dlkdd_runs" / "logs").glob("demo-*.log")
    assert str(log) in shown.replace("\n", "")
    assert "reference jobs done" in shown  # the teachers' and controls' live table
    assert "search: 3/3 trials done" in shown and "confirm runs: 1/1 trials done" in shown
    for noise in ("Trial status", "(TrainController", "real_accelerator", "RayTrainWorker"):
        assert noise not in shown, noise
    assert "Trial status" in log.read_text() and "RayTrainWorker" in log.read_text()
