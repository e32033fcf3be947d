"""A shared MLflow server over HTTP (with an outage mid-sweep), an unreachable one, and a
sweep submitted as a Ray Job to the local cluster's job server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import ray
import requests
import torch
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.spec import parse_spec
from orchestrator.sweep import run_sweep
from tests.conftest import small_spec
from tests.interrupt import children, finished_students
from tests.multinode_sweep import free_port

pytestmark = pytest.mark.slow

SWEEP = {"enhancements": ["gic"], "num_samples": 1, "scheduler": {"type": "fifo"},
         "temperature": {"type": "uniform", "low": 2, "high": 4},
         "alpha": {"type": "uniform", "low": 0.3, "high": 0.7}}  # fmt: skip
EPOCHS = {"optim": {"epochs": 2}}


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1: SQLite backend, local artifact root."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        self.process = subprocess.Popen(
            [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.uri}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(1)
        raise RuntimeError("mlflow server did not come up in 2 minutes")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its workers
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    srv.start()
    yield srv
    srv.stop()


def http_spec(root: Path, work: Path, uri: str, name: str) -> dict:
    spec = small_spec(root, work, name=name, sweep=SWEEP, teacher=EPOCHS, student=EPOCHS)
    spec["tracking"]["uri"] = uri
    return spec


def test_unreachable_server_fails_before_any_training(tmp_path, train_root) -> None:
    spec = http_spec(train_root, tmp_path, f"http://127.0.0.1:{free_port()}", "down")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    started = time.monotonic()
    result = CliRunner().invoke(app, ["sweep", str(spec_file)])
    assert result.exit_code == 2
    assert "unreachable" in result.output and spec["tracking"]["uri"] in result.output
    assert time.monotonic() - started < 30
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing stored


def test_http_sweep_survives_an_outage(server, ray_session, train_root, tmp_path, capfd) -> None:
    """The server is killed once a student has reported an epoch and restarted 30 s later
    (longer than MLflow's own retries, so writes must wait in the tracker's buffer);
    every epoch still reaches MLflow and the registered model reads back over HTTP.
    Storage is a URI (file://, read through pyarrow as s3:// would be)."""
    spec = http_spec(train_root, tmp_path, server.uri, "http")
    spec["storage"]["path"] = f"file://{tmp_path / 'runs'}"
    spec = parse_spec(spec)
    outage = threading.Thread(target=_outage, args=(server, tmp_path / "runs"))
    outage.start()
    try:
        parent = run_sweep(spec)
    finally:
        outage.join()
    assert "buffering" in capfd.readouterr().out

    client = mlflow.MlflowClient(server.uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("dlkdd").experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent}'",
    )
    roles = sorted(r.data.tags["dlkdd.role"] for r in runs)
    assert roles == ["control", "student", "teacher"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags["dlkdd.export_dir"].startswith("file://") for r in runs)
    for run in (r for r in runs if r.data.tags["dlkdd.role"] != "teacher"):
        epochs = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(set(epochs)) == [1, 2], run.info.run_name

    uri = ["--tracking-uri", server.uri]
    assert CliRunner().invoke(app, ["promote", "http", *uri]).exit_code == 0
    champion = client.get_model_version_by_alias("dlkdd-student", "champion")
    assert champion.run_id in {r.info.run_id for r in runs}
    mlflow.set_tracking_uri(server.uri)
    model = mlflow.pytorch.load_model("models:/dlkdd-student@champion", map_location="cpu")
    clips = torch.zeros(2, 3, spec.clip.num_frames, spec.clip.crop_size, spec.clip.crop_size)
    assert model(clips).shape == (2, 4)


def _outage(server: MlflowServer, storage: Path) -> None:
    """Down after the first student checkpoint (a report is on its way), up 30 s later."""
    deadline = time.monotonic() + 600
    while not list(storage.glob("*-student-*/checkpoint_*")):
        if time.monotonic() > deadline:
            return
        time.sleep(0.5)
    server.stop()
    time.sleep(30)
    server.start()


def test_submit_runs_a_sweep_on_the_job_server(server, ray_session, train_root, tmp_path) -> None:
    """`dlkdd submit` to this session's Ray job server; `dlkdd logs --follow` to the end."""
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(http_spec(train_root, tmp_path, server.uri, "job")))
    address = f"http://{ray._private.worker.get_dashboard_url()}"
    storage = str(tmp_path / "shared")
    result = CliRunner().invoke(
        app, ["submit", str(spec_file), "--address", address, "--storage", storage]
    )
    assert result.exit_code == 0, result.output
    job_id = result.output.split("submitted ")[1].split(":")[0]
    followed = CliRunner().invoke(app, ["logs", job_id, "--follow", "--address", address])
    assert followed.exit_code == 0, followed.output
    assert "sweep finished" in followed.output and "ablation" in followed.output
    listed = CliRunner().invoke(app, ["jobs", "--address", address])
    assert job_id in listed.output and "SUCCEEDED" in listed.output
    assert list(Path(storage).glob("job-student-*/checkpoint_*/export/meta.json"))


def test_submit_checks_the_dataset_root_on_the_cluster(ray_session, train_root, tmp_path) -> None:
    """The root need not exist where `submit` runs; the job's first step checks it on the
    cluster, names it, and trains nothing."""
    spec = small_spec(train_root, tmp_path, name="noroot")
    spec["dataset"]["root"] = str(tmp_path / "only_on_the_cluster")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    address = f"http://{ray._private.worker.get_dashboard_url()}"
    args = ["submit", str(tmp_path / "spec.yaml"), "--address", address,
            "--storage", str(tmp_path / "shared")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    job_id = result.output.split("submitted ")[1].split(":")[0]
    followed = CliRunner().invoke(app, ["logs", job_id, "--follow", "--address", address])
    assert followed.exit_code == 1
    assert f"dataset root {tmp_path / 'only_on_the_cluster'} does not exist" in followed.output
    assert not (tmp_path / "shared").exists()


def test_multinode_sweep_survives_a_lost_node_and_a_killed_driver(train_root, tmp_path) -> None:
    """Head + 1 worker node, a second joining once the first trial runs (tests/
    multinode_sweep.py, its own process): a trial starts on it while the first still runs,
    and trials run on both workers; one worker node is removed mid-trial; the sweep
    completes and the affected student resumes from its checkpoint rather than from
    epoch 0. Then the same
    sweep again with its driver killed: `dlkdd sweep --resume` completes it, training no
    teacher and rerunning no finished trial; no MLflow run is left RUNNING."""
    spec = small_spec(train_root, tmp_path, name="multi", teacher=EPOCHS,
                      student={"optim": {"epochs": 5}},
                      sweep={**SWEEP, "num_samples": 3})  # fmt: skip
    spec["resources"]["max_failures"] = 2
    spec_json, result_json = tmp_path / "spec.json", tmp_path / "result.json"
    spec_json.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        [sys.executable, "-m", "tests.multinode_sweep", str(spec_json), str(result_json)],
        cwd=Path(__file__).resolve().parents[1], env=env, timeout=1800,
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(result_json.read_text())
    assert result["worker_nodes"] == ["worker_1", "worker_2"]
    resumed, lost = result["resumed_from_epoch"], result["removed_run"]
    assert len(resumed) == 3 and lost in resumed and resumed[lost] >= 1, (lost, resumed)

    mlflow.set_tracking_uri(spec["tracking"]["uri"])
    trials = sorted(children(result["parent"], "student"), key=lambda r: r.info.start_time)
    first, joined = trials[0].info, result["joined_at_ms"]
    assert first.start_time < joined  # one at a time on the first worker ...
    assert any(joined < t.info.start_time < first.end_time for t in trials[1:]), (
        joined,
        [(t.info.start_time, t.info.end_time) for t in trials],
    )  # ... more once it joins
    killed, done = result["killed_parent"], result["finished_before_kill"]
    assert result["resume_exit"] == 0, result["resume_output"]
    assert mlflow.get_run(killed).info.status == "FINISHED" and done
    assert children(killed, "teacher") == [] and children(killed, "control") == []  # reused
    assert len(children(killed, "student")) == 3
    assert {r: n for r, n in finished_students(killed).items() if r in done} == done
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("dlkdd").experiment_id])
    # two sweep parents, one teacher (gic), one control, two sweeps of 3 students (three:
    # two run at once, so with two the sweep could end before its driver is killed)
    assert len(runs) == 2 + 1 + 1 + 2 * 3 and all(r.info.status == "FINISHED" for r in runs)
