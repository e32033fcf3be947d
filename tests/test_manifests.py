"""Each dataset's list format parses from files written exactly in that format, and each
kind of bad input names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.config import DatasetConfig
from trainers.data.manifests import (
    ARID_CLASSES,
    ManifestError,
    hold_out,
    load_splits,
    read_arid,
    read_csv,
    read_dark48,
    read_manifest,
    read_ug2,
)


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


@pytest.fixture()
def arid(tmp_path: Path) -> Path:
    (tmp_path / "mapping_table.txt").write_text(
        "".join(f"{i}\t{name}\n" for i, name in enumerate(ARID_CLASSES))
    )
    touch(tmp_path, "clips_v1/Drink/Drink_1_1.avi", "clips_v1/Wave/Wave_10_1.avi")
    (tmp_path / "ARID_split1_train.txt").write_text(
        "0\t0\tDrink/Drink_1_1.avi\n1\t10\tWave/Wave_10_1.avi\n"
    )
    return tmp_path


def test_arid_v1_split_list(arid: Path) -> None:
    m = read_arid(arid, arid / "ARID_split1_train.txt")
    assert m.classes == list(ARID_CLASSES)
    assert [label for _, label in m.items] == [0, 10]
    assert m.items[1][0] == str(arid / "clips_v1/Wave/Wave_10_1.avi")


def test_arid_v1_5_mp4_under_clips_v1_5(tmp_path: Path) -> None:
    touch(tmp_path, "clips_v1.5/Run/Run_3_2.mp4")
    (tmp_path / "list.txt").write_text("7\t5\tRun/Run_3_2.mp4\n")
    m = read_manifest("arid_v1_5", tmp_path, tmp_path / "list.txt")
    assert m.items == [(str(tmp_path / "clips_v1.5/Run/Run_3_2.mp4"), 5)]


def test_arid_label_out_of_range_names_line(arid: Path) -> None:
    (arid / "bad.txt").write_text("0\t0\tDrink/Drink_1_1.avi\n1\t11\tWave/Wave_10_1.avi\n")
    with pytest.raises(ManifestError, match=r"bad.txt:2: label 11 out of range"):
        read_arid(arid, arid / "bad.txt")


def test_arid_unknown_class_names_line(arid: Path) -> None:
    touch(arid, "clips_v1/Dance/Dance_1_1.avi")
    (arid / "bad.txt").write_text("0\t3\tDance/Dance_1_1.avi\n")
    with pytest.raises(ManifestError, match=r"bad.txt:1: unknown class 'Dance'"):
        read_arid(arid, arid / "bad.txt")


def test_arid_missing_video_names_line(arid: Path) -> None:
    (arid / "bad.txt").write_text("0\t0\tDrink/Drink_1_1.avi\n\n3\t0\tDrink/Drink_9_9.avi\n")
    with pytest.raises(ManifestError, match=r"bad.txt:3: video 'Drink/Drink_9_9.avi' not found"):
        read_arid(arid, arid / "bad.txt")


def test_missing_list_file_is_named(arid: Path) -> None:
    with pytest.raises(ManifestError, match=r"ARID_split2_train.txt: list file not found"):
        read_arid(arid, arid / "ARID_split2_train.txt")


def test_ug2_csv_six_classes_from_ids_5_to_10(tmp_path: Path) -> None:
    touch(tmp_path, "Wave/Wave_10_1.mp4", "Run/Run_2_1.mp4")
    (tmp_path / "t.csv").write_text(
        "VideoID,Video,ClassID\n0,Wave/Wave_10_1.mp4,10\n1,Run/Run_2_1.mp4,5\n"
    )
    m = read_ug2(tmp_path, tmp_path / "t.csv")
    assert [label for _, label in m.items] == [5, 0]
    assert m.classes == ["Run", "Sit", "Stand", "Turn", "Walk", "Wave"]


def test_ug2_label_disagreeing_with_folder(tmp_path: Path) -> None:
    touch(tmp_path, "Wave/Wave_10_1.mp4")
    (tmp_path / "t.csv").write_text("VideoID,Video,ClassID\n0,Wave/Wave_10_1.mp4,7\n")
    with pytest.raises(ManifestError, match=r"t.csv:2: label 7 \(Stand\) disagrees"):
        read_ug2(tmp_path, tmp_path / "t.csv")


def test_ug2_arid_ids_below_5_are_out_of_range(tmp_path: Path) -> None:
    touch(tmp_path, "Drink/Drink_2_1.mp4")
    (tmp_path / "t.csv").write_text("VideoID,Video,ClassID\n0,Drink/Drink_2_1.mp4,0\n")
    with pytest.raises(ManifestError, match=r"t.csv:2: label 0 out of range 5..10"):
        read_ug2(tmp_path, tmp_path / "t.csv")


@pytest.fixture()
def dark48(tmp_path: Path) -> Path:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/classInd.txt").write_text("0\tclimb\n1\tjump\n2\tkick")
    touch(tmp_path, "climb/c_01.mp4", "kick/k_07.mp4")
    (tmp_path / "train_split1.txt").write_text("climb/c_01.mp4 0\nkick/k_07.mp4 2\n")
    return tmp_path


def test_dark48_class_table_without_final_newline(dark48: Path) -> None:
    m = read_dark48(dark48, dark48 / "train_split1.txt")
    assert m.classes == ["climb", "jump", "kick"]
    assert [label for _, label in m.items] == [0, 2]


def test_list_ids_follow_a_one_based_table(dark48: Path) -> None:
    (dark48 / "annotations/classInd.txt").write_text("1\tclimb\n2\tjump\n3\tkick\n")
    (dark48 / "train_split1.txt").write_text("climb/c_01.mp4 1\nkick/k_07.mp4 3\n")
    m = read_dark48(dark48, dark48 / "train_split1.txt")
    assert [label for _, label in m.items] == [0, 2]


def test_dark48_malformed_line(dark48: Path) -> None:
    (dark48 / "test_split1.txt").write_text("climb/c_01.mp4 0\nkick/k_07.mp4\n")
    with pytest.raises(ManifestError, match=r"test_split1.txt:2: expected 'class/name.mp4 label'"):
        read_dark48(dark48, dark48 / "test_split1.txt")


def test_csv_labels_by_name_or_index(tmp_path: Path) -> None:
    touch(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "l.csv").write_text("path,label\na.mp4,walk\nb.mp4,run\n")
    m = read_csv(tmp_path, tmp_path / "l.csv")
    assert m.classes == ["run", "walk"] and [label for _, label in m.items] == [1, 0]
    (tmp_path / "classes.txt").write_text("walk\nrun\n")
    (tmp_path / "n.csv").write_text("a.mp4,1\nb.mp4,walk\n")
    m = read_csv(tmp_path, tmp_path / "n.csv")
    assert m.classes == ["walk", "run"] and [label for _, label in m.items] == [1, 0]


def test_csv_unknown_class(tmp_path: Path) -> None:
    touch(tmp_path, "a.mp4")
    (tmp_path / "l.csv").write_text("path,label\na.mp4,walk\n")
    (tmp_path / "classes.txt").write_text("run\n")
    with pytest.raises(ManifestError, match=r"l.csv:2: unknown class 'walk'"):
        read_csv(tmp_path, tmp_path / "l.csv")


def test_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nowhere: dataset root not found"):
        read_manifest("csv", tmp_path / "nowhere", tmp_path / "x.csv")


def test_hold_out_is_stratified_and_deterministic(arid: Path) -> None:
    touch(arid, *(f"clips_v1/Drink/Drink_{i}_1.avi" for i in range(10)))
    lines = "".join(f"{i}\t0\tDrink/Drink_{i}_1.avi\n" for i in range(10))
    (arid / "ARID_split1_train.txt").write_text(lines)
    m = read_arid(arid, arid / "ARID_split1_train.txt")
    train, val = hold_out(m, 0.2, seed=1)
    assert len(val) == 2 and len(train) == 8
    assert hold_out(m, 0.2, seed=1) == (train, val)
    assert not set(train.items) & set(val.items)


def test_load_splits_uses_csv_val_list(synth_root: Path) -> None:
    splits = load_splits(DatasetConfig(format="csv", root=synth_root))
    assert {k: len(v) for k, v in splits.items()} == {"train": 32, "val": 8, "test": 8}


def test_lists_saved_by_windows_tools_parse(tmp_path: Path) -> None:
    """A byte-order mark and CRLF line ends (Excel, Notepad) change nothing."""
    touch(tmp_path, "Wave/Wave_10_1.mp4")
    (tmp_path / "t.csv").write_bytes(
        "\ufeffVideoID,Video,ClassID\r\n0,Wave/Wave_10_1.mp4,10\r\n".encode()
    )
    (tmp_path / "mapping_table_t1.txt").write_bytes(
        "\ufeff5\tRun\r\n6\tSit\r\n7\tStand\r\n8\tTurn\r\n9\tWalk\r\n10\tWave".encode()
    )
    m = read_ug2(tmp_path, tmp_path / "t.csv")
    assert m.items == [(str(tmp_path / "Wave/Wave_10_1.mp4"), 5)] and m.classes[0] == "Run"
