"""Session-wide fixtures: real small things built once (synthetic videos, Ray, MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dark dataset: 4 classes, 16x64x64 H.264 clips, generic-CSV lists."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SynthConfig(num_classes=4, train_per_class=8, val_per_class=2,
                                 test_per_class=2, frames=16, size=64, seed=0))  # fmt: skip
    return root


@pytest.fixture()
def corrupt_video(tmp_path: Path) -> Path:
    """An .mp4 whose bytes are not a video (a truncated download, say)."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    return path
