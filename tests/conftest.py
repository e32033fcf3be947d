"""Session-wide fixtures: real small things built once (synthetic videos, Ray, MLflow)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainers.data.synth import SynthConfig, synthesize


def dark_dataset(factory: pytest.TempPathFactory, name: str, per_class: int, seed: int) -> Path:
    """A synthetic dark dataset of 4 classes, 16x64x64 H.264 clips, generic-CSV lists;
    val and test have a quarter of train's clips per class."""
    root = factory.mktemp(name)
    synthesize(root, SynthConfig(num_classes=4, train_per_class=per_class,
                                 val_per_class=per_class // 4, test_per_class=per_class // 4,
                                 frames=16, size=64, seed=seed))  # fmt: skip
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny set for data-layer tests: 8 training clips per class."""
    return dark_dataset(tmp_path_factory, "synth", per_class=8, seed=0)


@pytest.fixture()
def corrupt_video(tmp_path: Path) -> Path:
    """An .mp4 whose bytes are not a video (a truncated download, say)."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    return path


@pytest.fixture(scope="session")
def train_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An easy set for real training runs: 4 motions, 16 clips each to train."""
    return dark_dataset(tmp_path_factory, "train_data", per_class=16, seed=1)


@pytest.fixture(scope="session")
def process_group() -> Iterator[None]:
    """DeepSpeed in the test process (world size 1 over gloo) needs a process group and the
    launcher's LOCAL_RANK; one for the session: DeepSpeed keeps the first group it saw, so
    a group destroyed and made again fails its next engine. Environment restored at the end."""
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0",
           "WORLD_SIZE": "1", "LOCAL_RANK": "0"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        dist.init_process_group("gloo")
        yield
        dist.destroy_process_group()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session. 4 logical CPUs on 2 cores: a Tune trial
    needs one for its function plus one per Train worker. With the dashboard, as in
    production: Train's placement-group cleaner needs its State API to free the workers of
    a Train run whose controller died with its Tune trial. The venv leads PATH, as
    cluster.yaml arranges on nodes: a Ray Job's entrypoint runs `python` from PATH."""
    import os
    import sys

    import ray

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    ray.init(num_cpus=4, include_dashboard=True, logging_level="WARNING")
    yield ray
    ray.shutdown()


def small_spec(root: Path, work: Path, **overrides) -> dict:
    """A spec dict for tiny CPU jobs; tests override what they exercise."""
    from trainers.schedule import deep_merge

    optim = {"epochs": 5, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0.5}
    spec = {
        "name": "t",
        "dataset": {"format": "csv", "root": str(root), "num_workers": 0},
        "clip": {"num_frames": 8, "stride": 2, "crop_size": 32, "test_windows": 2},
        "teacher": {"model": {"arch": "tiny"}, "optim": optim},
        "student": {"model": {"arch": "tiny"}, "optim": optim},
        "resources": {"num_workers": 2, "max_failures": 0},
        "storage": {"path": str(work / "runs")},
        "tracking": {"uri": f"sqlite:///{work / 'mlflow.db'}"},
    }
    return deep_merge(spec, overrides)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared MLflow database and storage for the session's training runs."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def teacher_run(ray_session, train_root: Path, workdir: Path):
    """One real teacher (gic, 2 workers, DeepSpeed) trained once and shared by tests; its
    storage is a file:// URI, so `train teacher|student` run the URI path of s3://."""
    import yaml
    from typer.testing import CliRunner

    from orchestrator.cli import app

    spec_file = workdir / "spec.yaml"
    spec = small_spec(train_root, workdir, storage={"path": f"file://{workdir / 'runs'}"})
    spec_file.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["train", "teacher", str(spec_file), "--enhancement", "gic"])
    assert result.exit_code == 0, result.output
    return spec_file, result.output


@pytest.fixture(scope="session")
def official_tree(tmp_path_factory: pytest.TempPathFactory):
    """`official_tree(fmt)`: a synthetic dataset in that format's owners' layout (every
    class; 3 train, 2 test and, for ARID, 1 `other` clip per class), made once per format."""
    from trainers.data.synth_layouts import synthesize_layout

    made: dict[str, Path] = {}

    def make(fmt: str) -> Path:
        if fmt not in made:
            split = 0 if fmt == "arid_v1_5" else 1
            made[fmt] = synthesize_layout(tmp_path_factory.mktemp(fmt), fmt, split=split)
        return made[fmt]

    return make
