"""The tiny study the job and sweep benchmarks run: 4 synthetic dark classes, 8x32x32
clips, the tiny network, 2 Train workers of 1 CPU, MLflow in SQLite beside the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.spec import Spec, parse_spec
from trainers.data.synth import SynthConfig, synthesize


def tiny_data(root: Path, per_class: int) -> Path:
    """`per_class` training clips per class; val and test a quarter of that."""
    synthesize(root, SynthConfig(num_classes=4, train_per_class=per_class,
                                 val_per_class=per_class // 4, test_per_class=per_class // 4,
                                 frames=16, size=64, seed=1))  # fmt: skip
    return root


def tiny_spec(data: Path, work: Path, name: str, epochs: int, arch: str = "tiny",
              **extra: Any) -> Spec:  # fmt: skip
    """The study's spec; `extra` adds top-level blocks (a sweep)."""
    optim = {"epochs": epochs, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0.5}
    role = {"model": {"arch": arch}, "optim": optim}
    return parse_spec({
        "name": name,
        "dataset": {"format": "csv", "root": str(data), "num_workers": 0},
        "clip": {"num_frames": 8, "stride": 2, "crop_size": 32, "test_windows": 2},
        "teacher": role,
        "student": role,
        "resources": {"num_workers": 2, "cpus_per_worker": 1, "max_failures": 0},
        "storage": {"path": str(work / "runs")},
        "tracking": {"uri": f"sqlite:///{work / 'mlflow.db'}"},
        **extra,
    })  # fmt: skip
