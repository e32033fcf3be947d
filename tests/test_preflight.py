"""`--preflight` runs every packaged paper spec, shrunk, on a dataset tree in its owners'
layout: the spec's architecture, SGD with ZeRO-1, loader workers, its enhancements
(Zero-DCE trained briefly), Optuna and ASHA; and a spec with only `name` and `dataset`."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
import ray
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app

pytestmark = pytest.mark.slow

runner = CliRunner()


def invoke(command: list[str], sets: list[str]):
    return runner.invoke(app, [*command, "--preflight", *(a for s in sets for a in ("--set", s))])


def placed(tmp_path: Path, root: Path) -> list[str]:
    """--set overrides that put a packaged spec on this machine's data, MLflow and disk."""
    return [f"dataset.root={root}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"storage.path={tmp_path / 'runs'}"]  # fmt: skip


def preflight_runs(tmp_path: Path, experiment: str) -> list:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert mlflow.get_experiment_by_name(experiment) is None  # the real study's is untouched
    return mlflow.search_runs(experiment_names=[f"{experiment}-preflight"], output_format="list")


def assert_paper_recipe(teacher, spec: dict) -> None:
    assert teacher.info.status == "FINISHED"
    assert teacher.data.params["optim.optimizer"] == "sgd"
    assert teacher.data.params["optim.zero_stage"] == "1"
    assert teacher.data.params["model.arch"] == spec["teacher"]["model"]["arch"]
    assert teacher.data.params["dataset.num_workers"] == str(min(8, os.cpu_count()))  # capped


def test_arid_sweep_preflight(ray_session, official_tree, tmp_path: Path) -> None:
    """arid.yaml's whole study, shrunk: every enhancement (Zero-DCE trained briefly), one
    student per enhancement and the control, Optuna and ASHA, then the confirm runs on a
    second seed (the best configuration and that seed's control)."""
    spec = yaml.safe_load(Path("search_spaces/arid.yaml").read_text())
    result = invoke(["sweep", "arid"], placed(tmp_path, official_tree("arid")))
    assert result.exit_code == 0, result.output
    assert "preflight passed" in result.output
    assert "checkpoints removed" in result.output
    assert not (tmp_path / "runs/preflight").exists()  # GBs of 1-epoch checkpoints: gone
    runs = preflight_runs(tmp_path, spec["tracking"]["experiment"])
    roles = sorted(r.data.tags.get("dlkdd.role", "parent") for r in runs)
    n = len(spec["sweep"]["enhancements"])
    assert roles == ["control"] * 2 + ["parent"] + ["student"] * (n + 1) + ["teacher"] * n
    assert all(r.info.status == "FINISHED" for r in runs)
    distilled = [r for r in runs if r.data.tags.get("dlkdd.role") == "student"]
    searched = [r for r in distilled if r.data.params["seed"] == "0"]
    assert sorted(r.data.tags["dlkdd.enhancement"] for r in searched) == sorted(
        spec["sweep"]["enhancements"]
    )
    assert [r.data.params["seed"] for r in distilled if r not in searched] == ["1"]
    assert_paper_recipe(next(r for r in runs if r.data.tags.get("dlkdd.role") == "teacher"), spec)


@pytest.mark.parametrize("name", ["arid_v1_5", "dark48"])
def test_packaged_spec_teacher_preflight(
    ray_session, official_tree, tmp_path: Path, name: str
) -> None:
    """The other paper specs are arid.yaml on other data (checked here), whose sweep the
    test above runs; their teacher job proves that their datasets' layouts train."""
    spec = yaml.safe_load(Path(f"search_spaces/{name}.yaml").read_text())
    arid = yaml.safe_load(Path("search_spaces/arid.yaml").read_text())
    assert {k for k in arid if arid[k] != spec[k]} == {"name", "dataset", "tracking", "storage"}
    root = official_tree(spec["dataset"]["format"])
    result = invoke(["train", "teacher", name, "--enhancement", "gic"], placed(tmp_path, root))
    assert result.exit_code == 0, result.output
    [teacher] = preflight_runs(tmp_path, spec["tracking"]["experiment"])
    assert_paper_recipe(teacher, spec)


def test_preflight_stops_on_a_broken_dataset(ray_session, official_tree, tmp_path) -> None:
    import shutil

    root = tmp_path / "ARID_v1"
    shutil.copytree(official_tree("arid"), root, symlinks=True)
    (root / "data/Run/Run_train_1.avi").unlink()
    with (root / "list_cvt/ARID_split1_test.txt").open("a") as f:
        f.write("999\t4\n")
    sets = [f"dataset.root={root}", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
            f"storage.path={tmp_path / 'runs'}"]  # fmt: skip
    result = runner.invoke(
        app, ["sweep", "arid", "--preflight", *(a for s in sets for a in ("--set", s))]
    )
    assert result.exit_code == 1
    assert "Run_train_1.avi: file not found" in result.output
    assert "ARID_split1_test.txt:23: expected" in result.output
    # nothing trained: the storage holds only the log of the attempt
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["logs"]


def test_minimal_spec_trains_a_teacher(ray_session, train_root, tmp_path, monkeypatch) -> None:
    """Only `name` and `dataset`: the defaults (storage, tracking in ./mlflow.db) run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "min.yaml").write_text(
        yaml.safe_dump({"name": "minimal", "dataset": {"format": "csv", "root": str(train_root)}})
    )
    result = runner.invoke(app, ["train", "teacher", "min.yaml", "--preflight"])
    assert result.exit_code == 0, result.output
    assert [*(tmp_path / "dlkdd_runs/preflight").glob("minimal-teacher-gic-*/checkpoint_*")]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = mlflow.search_runs(experiment_names=["dlkdd-preflight"], output_format="list")
    assert run.info.status == "FINISHED" and run.data.params["model.arch"] == "r2plus1d_18"


def test_sweep_joins_a_running_local_ray(ray_session, tmp_path) -> None:
    """A `ray start --head` (here: the suite's own Ray) is joined, not refused: a second
    process's connect() finds it without RAY_ADDRESS."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    code = "from orchestrator.cluster import connect; print(connect(min_cpus=3))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert f"joined the local cluster at {ray.get_runtime_context().gcs_address}" in out


NO_OP_TRAIN_RUN = """
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.state import list_actors
TorchTrainer(lambda config: None, scaling_config=ScalingConfig(num_workers=1),
             run_config=RunConfig(name="noop", storage_path={storage!r})).fit()
here = ray.get_runtime_context().gcs_address  # two Rays run: name this one
print(sorted({{a.class_name for a in list_actors(address=here, limit=10000)}}))
"""


def test_a_ray_of_its_own_runs_train_for_quick_small_jobs(ray_session, tmp_path):
    """On a machine with no Ray to join, connect() starts one whose Train runs have no
    preemption watcher (nothing can be drained there) and check their workers every 0.1 s;
    a joined Ray keeps the watcher."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    no_ray_to_join = (  # the suite's Ray runs: make the join fail as it would with none
        "import ray\nfrom orchestrator import cluster\nreal = ray.init\n"
        "def init(address=None, **kw):\n"
        "    if address == 'auto':\n        raise ConnectionError('no Ray to join')\n"
        "    return real(address=address, **kw)\n"
        "ray.init = init\nprint(cluster.connect(min_cpus=2))\n"
    )
    interval = "import os\nprint(ray.get(ray.remote(lambda: os.environ["
    interval += "'RAY_TRAIN_HEALTH_CHECK_INTERVAL_S']).remote()))\n"  # in a Ray task
    code = no_ray_to_join + interval + NO_OP_TRAIN_RUN.format(storage=str(tmp_path / "own"))
    own = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert own.returncode == 0, own.stderr[-3000:]
    assert "started a local Ray" in own.stdout
    assert "\n0.1\n" in own.stdout  # its processes check Train workers every 0.1 s
    assert "RayTrainWorker" in own.stdout and "PreemptionWatcher" not in own.stdout
    joined = "import ray\nfrom orchestrator.cluster import connect\nprint(connect())\n"
    code = joined + NO_OP_TRAIN_RUN.format(storage=str(tmp_path / "joined"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "joined the local cluster" in result.stdout and "PreemptionWatcher" in result.stdout
