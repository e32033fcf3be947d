"""Datasets laid out as their owners ship them are found by default: ARID v1.0 and v1.5,
Dark-48 and UG2+ ARID1.1, written by the synthetic generator with real H.264 videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from trainers.config import DatasetConfig
from trainers.data.manifests import ARID_CLASSES, ManifestError, load_splits, read_manifest

runner = CliRunner()


def counts(splits: dict) -> dict[str, int]:
    return {name: len(m) for name, m in splits.items()}


def test_arid_v1_as_shipped(official_tree) -> None:
    root = official_tree("arid")
    splits = load_splits(DatasetConfig(format="arid", root=root))
    assert splits["train"].classes == list(ARID_CLASSES)
    assert counts(splits) == {"train": 22, "val": 11, "test": 22}  # 3/class, 1 held out
    assert all(p.startswith(str(root / "data")) for p, _ in splits["test"].items)
    assert {label for _, label in splits["val"].items} == set(range(11))


def test_the_hold_out_follows_its_own_seed(official_tree) -> None:
    """dataset.split_seed picks the validation clips; the same split_seed, the same clips."""
    root = official_tree("arid")
    val = [load_splits(DatasetConfig(format="arid", root=root, split_seed=s))["val"].items
           for s in (0, 0, 1)]  # fmt: skip
    assert val[0] == val[1] and val[0] != val[2]


def test_arid_other_list_as_validation(official_tree) -> None:
    root = official_tree("arid")
    splits = load_splits(DatasetConfig(format="arid", root=root, val_list="other"))
    assert counts(splits) == {"train": 33, "val": 11, "test": 22}
    assert not {p for p, _ in splits["val"].items} & {p for p, _ in splits["train"].items}


def test_other_is_refused_outside_arid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ARID's third list"):
        DatasetConfig(format="dark48", root=tmp_path, val_list="other")


@pytest.mark.parametrize("videos", ["clips_v1", "clips_v1/avi", ""])
def test_arid_videos_in_any_shipped_folder(official_tree, tmp_path: Path, videos: str) -> None:
    root = tmp_path / "ARID_v1"
    shutil.copytree(official_tree("arid") / "list_cvt", root / "list_cvt")
    shutil.copytree(official_tree("arid") / "clips_v1/avi", root / videos, dirs_exist_ok=True)
    splits = load_splits(DatasetConfig(format="arid", root=root, val_list="other"))
    assert counts(splits) == {"train": 33, "val": 11, "test": 22}


def test_arid_mapping_table_at_the_root_and_others_spelling(official_tree, tmp_path) -> None:
    root = tmp_path / "ARID_v1"
    shutil.copytree(official_tree("arid") / "clips_v1", root / "clips_v1")
    for f in (official_tree("arid") / "list_cvt").iterdir():
        shutil.copy(f, root / f.name.replace("_other.txt", "_others.txt"))
    splits = load_splits(DatasetConfig(format="arid", root=root, val_list="other"))
    assert counts(splits) == {"train": 33, "val": 11, "test": 22}


def test_arid_v1_5_third_party_split_lists(official_tree) -> None:
    root = official_tree("arid_v1_5")
    assert (root / "list_cvt/split_0/split0_train.txt").is_file()
    splits = load_splits(DatasetConfig(format="arid_v1_5", root=root, split=0))
    assert counts(splits) == {"train": 22, "val": 11, "test": 22}
    assert all(p.endswith(".mp4") and "/clips_v1.5/" in p for p, _ in splits["train"].items)


def test_arid_v1_5_with_v1_0_names_and_videos_in_data(official_tree, tmp_path) -> None:
    src = official_tree("arid_v1_5")
    root = tmp_path / "ARID_v1_5"
    shutil.copytree(src / "clips_v1.5", root / "data")
    (root / "list_cvt").mkdir()
    for subset in ("train", "test"):
        shutil.copy(src / f"list_cvt/split_0/split0_{subset}.txt",
                    root / f"list_cvt/ARID_split1_{subset}.txt")  # fmt: skip
    splits = load_splits(DatasetConfig(format="arid_v1_5", root=root, split=1))
    assert counts(splits) == {"train": 22, "val": 11, "test": 22}


def test_missing_split_names_every_place_looked(official_tree) -> None:
    with pytest.raises(ManifestError, match=r"no train list for arid split 2: looked for .*"
                       r"list_cvt/ARID_split2_train.txt"):  # fmt: skip
        load_splits(DatasetConfig(format="arid", root=official_tree("arid"), split=2))


def test_dark48_as_shipped(official_tree) -> None:
    root = official_tree("dark48")
    assert not (root / "annotations/classInd.txt").read_text().endswith("\n")
    splits = load_splits(DatasetConfig(format="dark48", root=root))
    assert len(splits["train"].classes) == 48
    assert counts(splits) == {"train": 96, "val": 48, "test": 96}


def test_dark48_videos_under_videos_folder(official_tree, tmp_path: Path) -> None:
    src = official_tree("dark48")
    root = tmp_path / "Dark48"
    shutil.copytree(src / "annotations", root / "annotations")
    shutil.copytree(src, root / "videos", ignore=shutil.ignore_patterns("annotations"))
    splits = load_splits(DatasetConfig(format="dark48", root=root))
    assert splits["test"].items[0][0].startswith(str(root / "videos"))


def test_ug2_six_classes_and_no_silent_test_list(official_tree) -> None:
    root = official_tree("ug2")
    train = root / "list_cvt/ARID1.1_t1_train_pub.csv"
    with pytest.raises(ManifestError, match="no labelled test list.*dataset.test_list"):
        load_splits(DatasetConfig(format="ug2", root=root))
    splits = load_splits(DatasetConfig(format="ug2", root=root, test_list=train))
    assert splits["train"].classes == ["Run", "Sit", "Stand", "Turn", "Walk", "Wave"]
    assert {label for _, label in splits["test"].items} == set(range(6))


def test_ug2_unlabelled_validation_csv_is_refused(official_tree) -> None:
    root = official_tree("ug2")
    unlabelled = root / "list_cvt/ARID1.1_t1_validation_gt_pub.csv"
    with pytest.raises(ManifestError, match=r"validation_gt_pub.csv: has no labels"):
        load_splits(DatasetConfig(format="ug2", root=root, test_list=unlabelled))


def test_malformed_real_world_row_names_file_and_line(official_tree, tmp_path: Path) -> None:
    root = tmp_path / "ug2"
    shutil.copytree(official_tree("ug2"), root)
    train = root / "list_cvt/ARID1.1_t1_train_pub.csv"
    with train.open("a") as f:
        f.write('770,,"4\t-18N3scYPX8_000034_000044.mp4"\n')
    with pytest.raises(ManifestError, match=r"ARID1.1_t1_train_pub.csv:20: expected"):
        read_manifest("ug2", root, train)


def test_data_check_reports_every_problem_of_an_official_tree(official_tree, tmp_path) -> None:
    root = tmp_path / "ARID_v1"
    shutil.copytree(official_tree("arid"), root, symlinks=True)
    (root / "data/Run/Run_train_1.avi").unlink()
    (root / "data/Sit/Sit_test_2.avi").write_bytes(b"\x00" * 64)
    with (root / "list_cvt/ARID_split1_train.txt").open("a") as f:
        f.write("99\t3\n100\tx\tPour/Pour_1_1.avi\n")
    result = runner.invoke(app, ["data", "check", str(root), "--format", "arid"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "ARID_split1_train.txt:34: expected 'index<TAB>label<TAB>path'" in out
    assert "ARID_split1_train.txt:35: expected" in out  # every malformed row, not the first
    assert "MISSING" in out and "Run_train_1.avi: file not found" in out
    assert "BAD" in out and "Sit_test_2.avi" in out
    assert "64 of 66 videos readable, 2 bad; 2 malformed rows" in out
    for name in ("train", "test", "other"):
        assert name in out
    assert "│ Drink " in out  # per-class counts


def test_data_check_passes_on_each_clean_tree(official_tree) -> None:
    for fmt in ("arid", "arid_v1_5", "dark48", "ug2"):
        split = "0" if fmt == "arid_v1_5" else "1"
        result = runner.invoke(app, ["data", "check", str(official_tree(fmt)), "--format", fmt,
                                     "--split", split])  # fmt: skip
        assert result.exit_code == 0, (fmt, result.output)
        assert " 0 bad; 0 malformed rows" in result.output


def test_preflight_reads_relative_lists_from_the_root(official_tree) -> None:
    from orchestrator.preflight import given_lists

    root = official_tree("arid")
    cfg = DatasetConfig(format="arid", root=root, train_list="list_cvt/ARID_split1_train.txt",
                        val_list="other")  # fmt: skip
    assert given_lists(cfg) == {"train": root / "list_cvt/ARID_split1_train.txt"}
