"""`dlkdd compare` over seeds, on runs with known metrics written into a real MLflow store:
means, t-intervals, the gain paired with the control of the same seed, "1 seed" where there
is one, and a reused control found through the parent's tag."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param
from typer.testing import CliRunner

from orchestrator import tracking
from orchestrator.cli import app
from orchestrator.compare import CONTROL_TAG, ablation_rows, summary
from orchestrator.intervals import config_rows, interval
from orchestrator.registry import candidate, describe

T_975_2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom (tables)


def test_a_t_interval_over_three_seeds() -> None:
    i = interval([0.5, 0.6, 0.7])
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert (i.mean, i.std, i.n) == (pytest.approx(0.6), pytest.approx(0.1), 3)
    assert (i.low, i.high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    one = interval([0.4])
    assert one.text() == "1 seed" and math.isnan(one.low)


def test_runs_repeating_a_seed_count_once() -> None:
    """A grid point drawn twice on seed 0 is one seed (averaged), not an interval of two."""

    def row(kind, seed, val, gain):
        return {"kind": kind, "enhancement": "gic" if kind == "student" else "none",
                "temperature": 4.0 if kind == "student" else math.nan, "alpha": 0.5,
                "seed": seed, "epochs": 3, "val_top1": val, "test_top1": val,
                "gain_test": gain}  # fmt: skip

    [student] = [c for c in config_rows([row("student", 0, 0.6, 0.1), row("student", 0, 0.8, 0.3)])]
    assert student["seeds"] == "0" and student["gain_pairs"] == 1
    assert student["val_mean"] == pytest.approx(0.7) and student["val_ci"] == "1 seed"
    assert student["gain_verdict"] == "1 seed"


def _run(client, experiment, parent, role, seed, val, test, enh="none", t=math.nan, a=0.0):
    tags = {"mlflow.parentRunId": parent, "dlkdd.role": role, "dlkdd.enhancement": enh,
            "dlkdd.temperature": f"{t:.4g}", "dlkdd.alpha": f"{a:.4g}"}  # fmt: skip
    run = client.create_run(experiment, tags=tags).info.run_id
    epochs = [Metric("val_top1", val - 0.1 * (3 - e), 0, e) for e in (1, 2, 3)]
    client.log_batch(run, params=[Param("seed", str(seed))], metrics=[
        *epochs, Metric("best_val_top1", val, 0, 3), Metric("test_top1", test, 0, 3)])  # fmt: skip
    client.set_terminated(run, "FINISHED")
    return run


@pytest.fixture()
def study(tmp_path: Path) -> tuple[str, str]:
    """A sweep `s` with a control and config A (gic, T 4, alpha 0.5) on seeds 0, 1, 2 and
    config B (he) on seed 0 only; the seed-0 control is reused (only named by the tag)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = tracking.connect(uri, "dlkdd")
    client = mlflow.MlflowClient(uri)
    parent = client.create_run(experiment, tags={"dlkdd.sweep_parent": "s"}).info.run_id
    elsewhere = client.create_run(experiment).info.run_id  # an earlier sweep's parent
    reused = _run(client, experiment, elsewhere, "control", 0, val=0.50, test=0.40)
    client.set_tag(parent, CONTROL_TAG, reused)
    for seed, (val, test) in {1: (0.60, 0.50), 2: (0.55, 0.45)}.items():
        _run(client, experiment, parent, "control", seed, val, test)
    for seed, test in {0: 0.50, 1: 0.70, 2: 0.45}.items():  # gains 0.10, 0.20, 0.00
        _run(client, experiment, parent, "student", seed, 0.7, test, "gic", 4.0, 0.5)
    _run(client, experiment, parent, "student", 0, 0.65, 0.30, "he", 2.0, 0.3)
    client.set_terminated(parent, "FINISHED")
    return uri, experiment


def test_configurations_over_seeds_pair_with_the_control_of_their_seed(study) -> None:
    _, experiment = study
    configs = {
        (c["kind"], c["enhancement"]): c for c in config_rows(ablation_rows(experiment, "s"))
    }
    control, a, b = configs["control", "none"], configs["student", "gic"], configs["student", "he"]
    assert control["seeds"] == "0,1,2" and control["test_mean"] == pytest.approx(0.45)
    assert a["seeds"] == "0,1,2" and a["epochs"] == 3 and a["gain_pairs"] == 3
    assert a["gain_test_mean"] == pytest.approx(0.1)
    half = T_975_2 * 0.1 / math.sqrt(3)  # the gains' sd is 0.1
    assert a["gain_test_ci"] == f"[{0.1 - half:.4f}, {0.1 + half:.4f}]"
    assert a["gain_verdict"] == "within noise"  # the interval holds zero
    assert b["gain_pairs"] == 1 and b["gain_test_ci"] == "1 seed" and b["gain_verdict"] == "1 seed"
    assert b["gain_test_mean"] == pytest.approx(-0.1)


def test_compare_writes_the_configuration_table_and_the_interval_plot(study, tmp_path) -> None:
    uri, _ = study
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["compare", "s", "--tracking-uri", uri, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "per configuration over seeds" in result.output
    with (out / "ablation_configs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == ["control", "student", "student"]
    assert {"val_ci", "test_ci", "gain_test_ci", "gain_verdict", "epochs"} <= set(rows[0])
    assert [r["gain_verdict"] for r in rows] == ["", "within noise", "1 seed"]
    assert (out / "gain_intervals.png").stat().st_size > 1000


def test_the_parent_summary_is_the_best_configuration_over_seeds(study) -> None:
    """The parent's headline ranks as compare and promote do: config A (val 0.70 on each
    of 3 seeds) beats B (0.65, 1 seed); its gain is A's paired test gain and interval."""
    uri, experiment = study
    client = mlflow.MlflowClient(uri)
    parent = client.search_runs([experiment], "tags.`dlkdd.sweep_parent` = 's'")[0].info.run_id
    got = summary(experiment, parent)
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert got == pytest.approx({
        "control_val_top1_mean": 0.55, "control_test_top1_mean": 0.45,
        "best_student_val_top1_mean": 0.7, "best_student_test_top1_mean": 0.55,
        "best_student_gain_test_mean": 0.1, "best_student_gain_test_ci_low": 0.1 - half,
        "best_student_gain_test_ci_high": 0.1 + half, "best_student_seeds": 3.0})  # fmt: skip


def test_the_registered_version_describes_its_configuration_over_seeds(study) -> None:
    uri, experiment = study
    run, intervals = candidate(experiment, "s", "best_val_top1", None)
    text = describe(run, intervals)
    assert "best_val_top1 of its configuration: mean 0.7000 over 3 seeds" in text
    assert "test_top1 of its configuration: mean 0.5500 over 3 seeds, 95% interval [" in text
    assert f"seed {run.data.params['seed']}" in text


def test_promote_ranks_configurations_by_their_mean_over_seeds(study) -> None:
    """A configuration with one lucky seed (0.72, but 0.40 on its other) does not outrank
    config A's mean of 0.70 over three seeds; A's interval goes with the candidate."""
    uri, experiment = study
    client = mlflow.MlflowClient(uri)
    parent = client.search_runs([experiment], "tags.`dlkdd.sweep_parent` = 's'")[0].info.run_id
    lucky = _run(client, experiment, parent, "student", 0, 0.72, 0.3, "he", 9.0, 0.9)
    _run(client, experiment, parent, "student", 1, 0.40, 0.3, "he", 9.0, 0.9)  # mean 0.56
    run, intervals = candidate(experiment, "s", "best_val_top1", None)
    assert run.data.tags["dlkdd.enhancement"] == "gic" and run.info.run_id != lucky
    over_seeds = intervals["best_val_top1"]
    assert over_seeds.n == 3 and over_seeds.mean == pytest.approx(0.7)
    assert over_seeds.text() == "[0.7000, 0.7000]"  # three equal seeds: no spread
    assert intervals["test_top1"].n == 3


def test_the_champion_is_judged_by_its_mean_over_seeds(study, tmp_path) -> None:
    """promote's gate reads the champion's mean (tagged when it was promoted), not the
    single run registered for it; a version registered otherwise is judged by its run."""
    from orchestrator.registry import champion_score

    uri, experiment = study
    client = mlflow.MlflowClient(uri)
    run, _ = candidate(experiment, "s", "best_val_top1", None)
    client.create_registered_model("m")
    version = client.create_model_version("m", str(tmp_path), run_id=run.info.run_id)
    assert champion_score(client, version, "best_val_top1") == pytest.approx(0.7)  # its run
    client.set_model_version_tag("m", version.version, "dlkdd.best_val_top1_mean", "0.6123")
    tagged = client.get_model_version("m", version.version)
    assert champion_score(client, tagged, "best_val_top1") == pytest.approx(0.6123)
