"""`dlkdd demo`, the README's first command, run as a user runs it: in an empty folder, on
embedded defaults (smoke.yaml, synthetic data, MLflow in ./mlflow.db), to its last step."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_study(ray_session, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    # it classified its four dark test clips with the promoted student
    assert sum(line.startswith("demo_data/videos/") for line in result.output.splitlines()) == 4
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("dlkdd-student", "champion")
    assert client.get_run(champion.run_id).data.tags["dlkdd.role"] == "student"
    assert len(list((tmp_path / "dlkdd_runs" / "soft_targets").glob("*.pt"))) == 2  # gic, he
    assert (tmp_path / "dlkdd_reports" / "smoke" / "gain_per_enhancement.png").is_file()
