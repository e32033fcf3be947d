"""A teacher is identified by content: a moved dataset or storage reuses it; an edited list,
another worker count, another precision or replaced Zero-DCE weights train a new one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.fingerprint import data_digest, job_fingerprint
from orchestrator.spec import Spec, parse_spec
from tests.conftest import small_spec
from trainers.enhance import curves, zero_dce


def fingerprint(root: Path, work: Path, method: str = "gic", **overrides) -> str:
    """The fingerprint of the `method` teacher of a small spec with `overrides`."""
    spec: Spec = parse_spec(small_spec(root, work, **overrides))
    job = spec.job("teacher", method)
    return job_fingerprint(job, spec.resources, data_digest(job.dataset))


@pytest.fixture()
def dataset(synth_root: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic set this test may edit."""
    return Path(shutil.copytree(synth_root, tmp_path / "data"))


def test_moved_dataset_and_storage_keep_the_fingerprint(dataset: Path, tmp_path: Path) -> None:
    moved = Path(shutil.copytree(dataset, tmp_path / "elsewhere" / "data"))
    assert fingerprint(dataset, tmp_path / "a") == fingerprint(moved, tmp_path / "b")


def test_an_edited_list_changes_it(dataset: Path, tmp_path: Path) -> None:
    before = fingerprint(dataset, tmp_path)
    lines = (dataset / "train.csv").read_text().splitlines()
    (dataset / "train.csv").write_text("\n".join(lines[:-1]) + "\n")  # one clip fewer
    assert fingerprint(dataset, tmp_path) != before


def test_a_replaced_video_changes_the_data_digest(dataset: Path) -> None:
    config = parse_spec(small_spec(dataset, dataset)).dataset
    before = data_digest(config)
    video = next((dataset / "videos").rglob("*.mp4"))
    video.write_bytes(video.read_bytes() + b"\0" * 16)
    assert data_digest(config) != before


def test_global_batch_and_precision_change_it(synth_root: Path, tmp_path: Path) -> None:
    two = fingerprint(synth_root, tmp_path)
    assert fingerprint(synth_root, tmp_path, resources={"num_workers": 4}) != two
    assert fingerprint(synth_root, tmp_path, resources={"gpus_per_worker": 1}) != two  # bf16
    loaders = fingerprint(synth_root, tmp_path, dataset={"num_workers": 3})
    assert loaders == two  # loader processes do not change what a clip is


def test_replaced_zero_dce_weights_change_it(synth_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    curves.save(zero_dce.DCENet(), weights)
    given = {"enhancement": {"zero_dce_weights": str(weights)}}
    before = fingerprint(synth_root, tmp_path, "zero_dce", **given)
    copy = tmp_path / "copy" / "w.pt"
    copy.parent.mkdir()
    shutil.copy(weights, copy)
    moved = {"enhancement": {"zero_dce_weights": f"file://{copy}"}}
    assert fingerprint(synth_root, tmp_path, "zero_dce", **moved) == before  # same bytes
    curves.save(zero_dce.DCENet(), weights)  # retrained in place: new random init
    assert fingerprint(synth_root, tmp_path, "zero_dce", **given) != before


def test_soft_target_key_follows_teacher_and_clips_not_the_students_search(
    dataset: Path, tmp_path: Path
) -> None:
    """One store per teacher, data seed and clip settings: a moved teacher export or another
    T, alpha or learning rate share it; another seed, crop, batch or teacher weights do not."""
    import torch

    from orchestrator.fingerprint import soft_target_key
    from trainers import export, models

    meta = {"role": "teacher", "arch": "tiny", "classes": ["a", "b", "c", "d"], "clip": {},
            "metrics": {}, "input_enhancement": {"name": "gic", "gamma": 2.0}}  # fmt: skip
    torch.manual_seed(0)
    teacher = export.export(tmp_path / "t", models.build("tiny", 4).state_dict(), meta)

    def key(teacher_dir: Path = teacher, **overrides) -> str:
        spec = parse_spec(small_spec(dataset, tmp_path, **overrides))
        job = spec.job("student", teacher_dir=teacher_dir, temperature=2.0, alpha=0.5)
        return soft_target_key(job, spec.resources, data_digest(job.dataset, ("train",)))

    base = key()
    moved = Path(shutil.copytree(teacher, tmp_path / "elsewhere" / "t"))
    assert key(moved) == base
    assert key(distill={"temperature": 9.0}, student={"optim": {"lr": 0.1}}) == base
    assert key(seed=1) != base
    assert key(clip={"crop_size": 16}) != base
    assert key(student={"optim": {"batch_size": 4}}) != base
    other = export.export(tmp_path / "t2", models.build("tiny", 4).state_dict(), meta)
    assert key(other) != base


def control_fingerprint(root: Path, work: Path, **overrides) -> str:
    spec: Spec = parse_spec(small_spec(root, work, **overrides))
    job = spec.job("student", alpha=0.0)
    return job_fingerprint(job, spec.resources, data_digest(job.dataset))


def test_the_control_is_keyed_by_the_students_recipe_not_an_enhancement(synth_root, tmp_path):
    """The control (alpha = 0) is reused like a teacher: the students' recipe counts, the
    enhancement it never sees does not, and it never shares a teacher's fingerprint."""
    control = control_fingerprint(synth_root, tmp_path)
    assert control == control_fingerprint(synth_root, tmp_path, enhancement={"gamma": 4.0})
    assert control != control_fingerprint(synth_root, tmp_path, student={"optim": {"epochs": 9}})
    assert control != fingerprint(synth_root, tmp_path, "identity")  # same tiny recipe
    spec = parse_spec(small_spec(synth_root, tmp_path))
    student = spec.job("student", alpha=0.5, teacher_dir=tmp_path)
    with pytest.raises(ValueError, match="only teachers and the control"):
        job_fingerprint(student, spec.resources, "data")
