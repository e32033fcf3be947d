"""`dlkdd data` and `dlkdd enhance` commands, run as a user would."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

runner = CliRunner()


def test_synth_then_check_passes(tmp_path: Path) -> None:
    out = tmp_path / "d"
    result = runner.invoke(app, ["data", "synth", str(out), "--classes", "2", "--train-per-class",
                                 "2", "--val-per-class", "1", "--test-per-class", "1",
                                 "--frames", "6", "--size", "64"])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "check", str(out)])
    assert result.exit_code == 0, result.output
    assert "8 of 8 videos readable, 0 bad" in result.output


def test_check_lists_every_bad_file_and_fails(
    synth_root: Path, tmp_path: Path, corrupt_video: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    shutil.copy(corrupt_video, root / "videos/rise/train_rise_0001.mp4")
    (root / "videos/fall/val_fall_0000.mp4").unlink()
    result = runner.invoke(app, ["data", "check", str(root)])
    assert result.exit_code == 1
    assert "train_rise_0001.mp4: cannot open" in result.output
    assert "val_fall_0000.mp4: file not found" in result.output
    assert "46 of 48 videos readable, 2 bad; 0 malformed rows" in result.output


def test_check_reports_a_bad_list_line(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("path,label\nx.mp4\n")
    (tmp_path / "classes.txt").write_text("a\n")
    result = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 1 and "train.csv:2: expected 'path,label'" in result.output
    assert "0 of 0 videos readable, 0 bad; 1 malformed rows" in result.output


def test_check_without_lists_names_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(tmp_path), "--format", "dark48"])
    assert result.exit_code == 2 and "annotations/train_split1.txt" in result.output


def test_preview_writes_png(synth_root: Path, tmp_path: Path) -> None:
    video = next((synth_root / "videos/sway").glob("*.mp4"))
    out = tmp_path / "p.png"
    result = runner.invoke(app, ["enhance", "preview", str(video), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_zero_dce_writes_loadable_weights(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "zd.pt"
    args = ["enhance", "train-zero-dce", "--manifest", str(synth_root / "val.csv"),
            "--out", str(out), "--steps", "20"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    from trainers import enhance

    enhance.build("zero_dce", weights=out)
