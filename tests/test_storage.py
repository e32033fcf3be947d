"""Storage locations: the same reads and writes for a path and a URI (file:// here, read
through pyarrow exactly as s3:// is), and Zero-DCE weights a sweep keeps there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.spec import parse_spec
from orchestrator.teachers import curve_weights
from tests.conftest import small_spec
from trainers import storage
from trainers.enhance import zero_dce


@pytest.fixture(params=["path", "uri"])
def root(request, tmp_path: Path) -> str:
    return str(tmp_path) if request.param == "path" else f"file://{tmp_path}"


def test_put_then_read_back(root: str, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights")
    location = storage.join(root, "deep", "er", "w.pt")
    assert not storage.is_file(location)
    storage.put(source, location)
    assert storage.is_file(location)
    assert storage.local_file(location).read_bytes() == b"weights"


def test_a_file_written_beside_one_already_read_is_found(root: str, tmp_path: Path) -> None:
    """Each file is cached by its own location: a later sweep's weights in the same folder
    are read, not looked up in the folder as first fetched."""
    source = tmp_path / "source.bin"
    for name, data in (("a.pt", b"first"), ("b.pt", b"second")):
        source.write_bytes(data)
        storage.put(source, storage.join(root, "zero_dce", name))
        assert storage.local_file(storage.join(root, "zero_dce", name)).read_bytes() == data


def test_remove_a_folder_says_what_it_freed(root: str, tmp_path: Path) -> None:
    (tmp_path / "pf/a/b").mkdir(parents=True)
    (tmp_path / "pf/a/b/w.pt").write_bytes(b"x" * 1000)
    (tmp_path / "pf/meta.json").write_bytes(b"{}")
    assert storage.remove(storage.join(root, "pf")) == 1002
    assert not (tmp_path / "pf").exists() and tmp_path.is_dir()
    assert storage.remove(storage.join(root, "pf")) == 0  # absent: nothing to do


def test_a_teacher_run_whose_export_is_gone_is_copied_into_storage(
    root: str, tmp_path: Path
) -> None:
    """`train student --teacher RUN_ID`: the export where the job wrote it, else the MLflow
    copy put under the storage location (a URI stays a URI: every node reads it)."""
    import mlflow

    from orchestrator import tracking

    tracking.connect(f"sqlite:///{tmp_path / 'm.db'}", "e")
    (tmp_path / "export").mkdir()
    (tmp_path / "export/meta.json").write_text("{}")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "export"), artifact_path="export")
        mlflow.set_tag("dlkdd.export_dir", storage.join(root, "export"))
    dest = storage.join(root, "runs", "teachers", run.info.run_id)
    assert tracking.export_of(run.info.run_id, dest) == storage.join(root, "export")
    (tmp_path / "export/meta.json").unlink()  # the job's storage was cleaned up
    assert tracking.export_of(run.info.run_id, dest) == dest
    assert storage.local_file(storage.join(dest, "meta.json")).read_text() == "{}"


def test_newest_checkpoint_holding_a_file(root: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for name in ("checkpoint_2026-01-01_00-00-01.0", "checkpoint_2026-01-01_00-00-03.0"):
        (run / name / "export").mkdir(parents=True)
    (run / "checkpoint_2026-01-01_00-00-01.0" / "export" / "meta.json").write_text("{}")
    (run / "checkpoint_2026-01-01_00-00-02.0" / "export").mkdir(parents=True)
    (run / "checkpoint_2026-01-01_00-00-02.0" / "export" / "meta.json").write_text("{}")
    newest = storage.newest_holding(storage.join(root, "run"), "export/meta.json")
    assert newest == storage.join(root, "run", "checkpoint_2026-01-01_00-00-02.0")
    copy = storage.local_copy(storage.join(newest, "export"))
    assert (copy / "meta.json").read_text() == "{}"
    assert storage.newest_holding(storage.join(root, "nothing"), "export/meta.json") is None


def test_zero_dce_weights_are_trained_once_into_storage(
    ray_session, synth_root, root: str, tmp_path
) -> None:
    """Trained once, by a Ray task where the cluster has CPUs (not in the driver, which
    may run on a small head), into storage."""
    from ray.util.state import list_tasks

    sweep = {"enhancements": ["zero_dce"], "zero_dce_steps": 3,
             "temperature": {"type": "choice", "values": [4]},
             "alpha": {"type": "choice", "values": [0.5]}}  # fmt: skip
    spec = small_spec(synth_root, tmp_path, sweep=sweep)
    spec["storage"]["path"] = storage.join(root, "runs")
    spec = parse_spec(spec)
    location = curve_weights(spec)
    assert location.startswith(spec.storage.path) and storage.is_file(location)
    zero_dce.load(storage.local_file(location))  # a real DCENet state_dict
    stamp = (tmp_path / "runs" / "zero_dce").stat().st_mtime_ns
    # task events reach the State API about a second after the task ends
    deadline, finished = time.monotonic() + 30, False
    while not finished and time.monotonic() < deadline:
        # by name: Ray filters it before its 10,000-task limit (a long session has more)
        tasks = list_tasks(filters=[("name", "=", "_train_curves")], detail=True)
        finished = any(t.state == "FINISHED" for t in tasks)
        time.sleep(0.5)
    assert finished
    assert curve_weights(spec) == location  # reused, not retrained
    assert (tmp_path / "runs" / "zero_dce").stat().st_mtime_ns == stamp
