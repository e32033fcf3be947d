"""Readers for the list files that dark-video datasets ship with, all into one `Manifest`.

Every reader resolves each video on disk and validates each label, so that a typo in a list
file is reported with its file and line before a single GPU-hour is spent.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trainers.config import DatasetConfig

ARID_CLASSES = (
    "Drink", "Jump", "Pick", "Pour", "Push", "Run", "Sit", "Stand", "Turn", "Walk", "Wave",
)  # fmt: skip


class ManifestError(ValueError):
    """A list file is missing or one of its lines is wrong; the message names file and line."""


@dataclass(frozen=True)
class Manifest:
    """Labelled videos plus the class names the labels index into."""

    items: list[tuple[str, int]]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.items)


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    if not path.is_file():
        raise ManifestError(f"{path}: list file not found")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line.rstrip("\n")


def _resolve(root: Path, rel: str, subdirs: tuple[str, ...], where: str, strict: bool) -> str:
    """Finds a video under the root or one of the sub-folders that copies of a dataset use.

    With strict=False a missing file is returned as root/rel, for `data check` to report."""
    for base in (root, *(root / s for s in subdirs)):
        candidate = base / rel
        if candidate.is_file():
            return str(candidate)
    if not strict:
        return str(root / rel)
    raise ManifestError(f"{where}: video {rel!r} not found under {root}")


def _check_label(label: int, classes: list[str], where: str) -> int:
    if not 0 <= label < len(classes):
        raise ManifestError(f"{where}: label {label} out of range 0..{len(classes) - 1}")
    return label


def _check_folder(rel: str, label: int, classes: list[str], where: str) -> None:
    """The class folder in a path must be a known class and agree with the numeric label."""
    folder = Path(rel).parts[0] if len(Path(rel).parts) > 1 else None
    if folder is None:
        return
    if folder not in classes:
        raise ManifestError(f"{where}: unknown class {folder!r} in path {rel!r}")
    if classes.index(folder) != label:
        raise ManifestError(
            f"{where}: label {label} ({classes[label]}) disagrees with class folder {folder!r}"
        )


def read_class_table(path: Path) -> list[str]:
    """`id<TAB>name` (ARID mapping_table.txt, Dark-48 classInd.txt); ids may start at 0 or 1."""
    pairs: list[tuple[int, str]] = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{path}:{lineno}: expected 'id<TAB>name', got {line!r}")
        pairs.append((int(parts[0]), parts[1]))
    offset = min(i for i, _ in pairs)
    names = [name for _, name in sorted(pairs)]
    if sorted(i - offset for i, _ in pairs) != list(range(len(pairs))):
        raise ManifestError(f"{path}: class ids are not consecutive")
    return names


def read_arid(
    root: Path, list_path: Path, video_dirs: tuple[str, ...] = ("clips_v1",), strict: bool = True
) -> Manifest:
    """ARID v1.0 / v1.5 split lists: `index<TAB>label<TAB>Class/Class_S_N.avi`."""
    mapping = root / "mapping_table.txt"
    classes = read_class_table(mapping) if mapping.is_file() else list(ARID_CLASSES)
    items = []
    for lineno, line in _lines(list_path):
        where = f"{list_path}:{lineno}"
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            raise ManifestError(f"{where}: expected 'index<TAB>label<TAB>path', got {line!r}")
        label = _check_label(int(parts[1]), classes, where)
        rel = parts[2].strip()
        _check_folder(rel, label, classes, where)
        items.append((_resolve(root, rel, video_dirs, where, strict), label))
    return Manifest(items, classes)


def read_ug2(root: Path, csv_path: Path, strict: bool = True) -> Manifest:
    """UG2+ ARID1.1 CSV: header `VideoID,Video,ClassID`, e.g. `0,Wave/Wave_10_1.mp4,10`."""
    classes = list(ARID_CLASSES)
    items = []
    for lineno, row in _csv_rows(csv_path, expected_header=("VideoID", "Video", "ClassID")):
        where = f"{csv_path}:{lineno}"
        if len(row) != 3 or not row[2].strip().isdigit():
            raise ManifestError(f"{where}: expected 'VideoID,Video,ClassID', got {row!r}")
        label = _check_label(int(row[2]), classes, where)
        rel = row[1].strip()
        _check_folder(rel, label, classes, where)
        items.append((_resolve(root, rel, ("clips_v1.5", "clips_v1"), where, strict), label))
    return Manifest(items, classes)


def read_dark48(root: Path, list_path: Path, strict: bool = True) -> Manifest:
    """Dark-48: `annotations/classInd.txt` plus split lines `class/name.mp4 label`."""
    classes = read_class_table(root / "annotations" / "classInd.txt")
    items = []
    for lineno, line in _lines(list_path):
        where = f"{list_path}:{lineno}"
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ManifestError(f"{where}: expected 'class/name.mp4 label', got {line!r}")
        label = _check_label(int(parts[1]), classes, where)
        _check_folder(parts[0], label, classes, where)
        items.append((_resolve(root, parts[0], ("videos",), where, strict), label))
    return Manifest(items, classes)


def read_csv(root: Path, csv_path: Path, strict: bool = True) -> Manifest:
    """Generic `path,label`; label is a class name or an index. Classes come from
    `classes.txt` beside the CSV when present, else from the sorted label names."""
    rows = list(_csv_rows(csv_path, expected_header=("path", "label")))
    classes_file = csv_path.parent / "classes.txt"
    if classes_file.is_file():
        classes = [n for _, n in _lines(classes_file)]
    else:
        names = {r[1].strip() for _, r in rows if len(r) == 2 and not r[1].strip().isdigit()}
        if not names:
            raise ManifestError(f"{csv_path}: numeric labels need a classes.txt beside it")
        classes = sorted(names)
    items = []
    for lineno, row in rows:
        where = f"{csv_path}:{lineno}"
        if len(row) != 2:
            raise ManifestError(f"{where}: expected 'path,label', got {row!r}")
        rel, raw = row[0].strip(), row[1].strip()
        if raw.isdigit():
            label = _check_label(int(raw), classes, where)
        elif raw in classes:
            label = classes.index(raw)
        else:
            raise ManifestError(f"{where}: unknown class {raw!r}")
        items.append((_resolve(root, rel, (), where, strict), label))
    return Manifest(items, classes)


def _csv_rows(path: Path, expected_header: tuple[str, ...]) -> Iterable[tuple[int, list[str]]]:
    """CSV rows with line numbers, skipping a header row if it matches `expected_header`."""
    if not path.is_file():
        raise ManifestError(f"{path}: list file not found")
    with path.open(newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if lineno == 1 and tuple(c.strip() for c in row) == expected_header:
                continue
            yield lineno, row


def default_list(fmt: str, root: Path, split: int, subset: str) -> Path:
    """Where each format keeps its official list for `subset` ('train' or 'test')."""
    if fmt in ("arid", "arid_v1_5"):
        name = f"ARID_split{split}_{subset}.txt"
        for base in (root, root / "list_cvt", root / "splits"):
            if (base / name).is_file():
                return base / name
        return root / name
    if fmt == "dark48":
        return root / f"{subset}_split{split}.txt"
    if fmt == "ug2":
        return root / f"ARID1.1_t1_{'train' if subset == 'train' else 'validation'}_pub.csv"
    return root / f"{subset}.csv"


def read_manifest(fmt: str, root: Path, list_path: Path, strict: bool = True) -> Manifest:
    """Dispatches on the dataset format named in the spec."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset root not found")
    if fmt == "arid":
        return read_arid(root, list_path, ("clips_v1",), strict)
    if fmt == "arid_v1_5":
        return read_arid(root, list_path, ("clips_v1.5", "clips_v1"), strict)
    if fmt == "ug2":
        return read_ug2(root, list_path, strict)
    if fmt == "dark48":
        return read_dark48(root, list_path, strict)
    if fmt == "csv":
        return read_csv(root, list_path, strict)
    raise ManifestError(f"unknown dataset format {fmt!r}")


def hold_out(manifest: Manifest, fraction: float, seed: int) -> tuple[Manifest, Manifest]:
    """Deterministic per-class split of a training list into (train, val) for datasets
    whose official splits have no validation list (ARID, Dark-48)."""
    rng = random.Random(seed)
    train, val = [], []
    for label in range(len(manifest.classes)):
        group = [item for item in manifest.items if item[1] == label]
        rng.shuffle(group)
        n_val = round(len(group) * fraction) if len(group) > 1 else 0
        val += group[:n_val]
        train += group[n_val:]
    return Manifest(sorted(train), manifest.classes), Manifest(sorted(val), manifest.classes)


def load_splits(cfg: DatasetConfig, seed: int = 0) -> dict[str, Manifest]:
    """The train / val / test manifests a job uses, from the spec's dataset block."""
    fmt, root = cfg.format, Path(cfg.root)
    train = read_manifest(fmt, root, cfg.train_list or default_list(fmt, root, cfg.split, "train"))
    test = read_manifest(fmt, root, cfg.test_list or default_list(fmt, root, cfg.split, "test"))
    if cfg.val_list is not None:
        val = read_manifest(fmt, root, cfg.val_list)
    elif fmt == "csv" and default_list(fmt, root, cfg.split, "val").is_file():
        val = read_manifest(fmt, root, default_list(fmt, root, cfg.split, "val"))
    else:
        train, val = hold_out(train, cfg.val_fraction, seed)
    return {"train": train, "val": val, "test": test}
