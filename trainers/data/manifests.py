"""Readers for the list files that dark-video datasets ship with, all into one `Manifest`.

Each dataset is found in the layout its owners distribute (see `layouts.py`). Every reader
resolves each video on disk and validates each label, so that a typo in a list file is
reported with its file and line before a single GPU-hour is spent. With `strict=False`
(`dlkdd data check`) a reader collects every malformed row instead of stopping at the first.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from trainers.config import DatasetConfig
from trainers.data import layouts
from trainers.data.layouts import ManifestError

ARID_CLASSES = (
    "Drink", "Jump", "Pick", "Pour", "Push", "Run", "Sit", "Stand", "Turn", "Walk", "Wave",
)  # fmt: skip

__all__ = ["ARID_CLASSES", "Manifest", "ManifestError", "load_splits", "read_manifest"]


@dataclass(frozen=True)
class Manifest:
    """Labelled videos plus the class names the labels index into; `problems` holds the
    malformed rows a non-strict read skipped (file:line and what is wrong)."""

    items: list[tuple[str, int]]
    classes: list[str]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class ClassTable:
    """Class names and the id the dataset's lists give the first one (ARID 0, UG2 5)."""

    names: list[str]
    first_id: int = 0

    def index(self, class_id: int, where: str) -> int:
        """The model's label (0-based) for a class id as the list files write it."""
        label = class_id - self.first_id
        if not 0 <= label < len(self.names):
            last = self.first_id + len(self.names) - 1
            raise ManifestError(f"{where}: label {class_id} out of range {self.first_id}..{last}")
        return label


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    if not path.is_file():
        raise ManifestError(f"{path}: list file not found")
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line.rstrip("\r\n")


def _csv_rows(path: Path, header: tuple[str, ...]) -> Iterable[tuple[int, list[str]]]:
    """CSV rows with line numbers, skipping a first row equal to `header`."""
    if not path.is_file():
        raise ManifestError(f"{path}: list file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if lineno == 1 and tuple(c.strip() for c in row) == header:
                continue
            yield lineno, row


def _collect(
    rows: Iterable[tuple[int, object]],
    list_path: Path,
    parse: Callable[[object, str], tuple[str, int]],
    classes: list[str],
    strict: bool,
) -> Manifest:
    """Parses every row; a bad row raises (strict) or is recorded as a problem."""
    items, problems = [], []
    for lineno, row in rows:
        where = f"{list_path}:{lineno}"
        try:
            items.append(parse(row, where))
        except ManifestError as err:
            if strict:
                raise
            problems.append(str(err))
    return Manifest(items, classes, problems)


def _resolve(root: Path, rel: str, subdirs: tuple[str, ...], where: str, strict: bool) -> str:
    """The video under one of the folders the dataset's copies use, or under the root.

    With strict=False a missing file is returned as root/rel, for `data check` to report."""
    for base in (*(root / s for s in subdirs), root):
        candidate = base / rel
        if candidate.is_file():
            return str(candidate)
    if not strict:
        return str(root / rel)
    searched = ", ".join(str(root / s) for s in subdirs) + (", " if subdirs else "") + str(root)
    raise ManifestError(f"{where}: video {rel!r} not found under {searched}")


def _check_folder(rel: str, label: int, classes: list[str], where: str, raw: int) -> None:
    """The class folder in a path must be a known class and agree with the numeric label
    (`raw`: the label as the list writes it)."""
    parts = Path(rel).parts
    if len(parts) < 2:
        return
    folder = parts[0]
    if folder not in classes:
        raise ManifestError(f"{where}: unknown class {folder!r} in path {rel!r}")
    if classes.index(folder) != label:
        raise ManifestError(
            f"{where}: label {raw} ({classes[label]}) disagrees with class folder {folder!r}"
        )


def read_class_table(path: Path) -> ClassTable:
    """`id<TAB>name` (ARID mapping_table.txt, Dark-48 classInd.txt, UG2 mapping_table_t1.txt)."""
    pairs: list[tuple[int, str]] = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{path}:{lineno}: expected 'id<TAB>name', got {line!r}")
        pairs.append((int(parts[0]), parts[1]))
    first = min(i for i, _ in pairs)
    if sorted(i - first for i, _ in pairs) != list(range(len(pairs))):
        raise ManifestError(f"{path}: class ids are not consecutive")
    return ClassTable([name for _, name in sorted(pairs)], first)


def _arid_table(root: Path) -> ClassTable:
    path = layouts.find(root, layouts.ARID_TABLE)
    return read_class_table(path) if path else ClassTable(list(ARID_CLASSES))


def _ug2_table(root: Path) -> ClassTable:
    """UG2+ track 2.1 has six classes, ids 5..10 (Run..Wave) in its own mapping table."""
    path = layouts.find(root, layouts.UG2_TABLE)
    return read_class_table(path) if path else ClassTable(list(ARID_CLASSES[5:]), 5)


def read_arid(
    root: Path,
    list_path: Path,
    video_dirs: tuple[str, ...] = layouts.VIDEO_DIRS["arid"],
    strict: bool = True,
) -> Manifest:
    """ARID v1.0 / v1.5 split lists: `index<TAB>label<TAB>Class/Class_S_N.avi`."""
    table = _arid_table(root)

    def parse(line: str, where: str) -> tuple[str, int]:
        parts = re.split(r"\s+", line.strip(), maxsplit=2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise ManifestError(f"{where}: expected 'index<TAB>label<TAB>path', got {line!r}")
        label = table.index(int(parts[1]), where)
        _check_folder(parts[2], label, table.names, where, int(parts[1]))
        return _resolve(root, parts[2], video_dirs, where, strict), label

    return _collect(_lines(list_path), list_path, parse, table.names, strict)


def read_ug2(root: Path, csv_path: Path, strict: bool = True) -> Manifest:
    """UG2+ ARID1.1 CSV `VideoID,Video,ClassID` (e.g. `0,Wave/Wave_10_1.mp4,10`); ClassIDs
    are the mapping table's (5..10), labels for the model 0..5."""
    table = _ug2_table(root)
    _refuse_unlabelled(csv_path)

    def parse(row: list[str], where: str) -> tuple[str, int]:
        if len(row) != 3 or not row[1].strip() or not row[2].strip().isdigit():
            raise ManifestError(f"{where}: expected 'VideoID,Video,ClassID', got {row!r}")
        label = table.index(int(row[2]), where)
        rel = row[1].strip()
        _check_folder(rel, label, table.names, where, int(row[2]))
        return _resolve(root, rel, layouts.VIDEO_DIRS["ug2"], where, strict), label

    rows = _csv_rows(csv_path, ("VideoID", "Video", "ClassID"))
    return _collect(rows, csv_path, parse, table.names, strict)


def _refuse_unlabelled(csv_path: Path) -> None:
    """UG2's public validation CSV has `VideoID,Video` only: never a silent test list."""
    if not csv_path.is_file():
        return
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    if [c.strip() for c in header] == ["VideoID", "Video"]:
        raise ManifestError(
            f"{csv_path}: has no labels (columns VideoID,Video); it cannot be a train, val or "
            "test list. Give dataset.test_list a labelled CSV 'VideoID,Video,ClassID' (for "
            "example rows held out of ARID1.1_t1_train_pub.csv); classify unlabelled videos "
            "with `dlkdd predict --list`"
        )


def read_dark48(root: Path, list_path: Path, strict: bool = True) -> Manifest:
    """Dark-48: `annotations/classInd.txt` plus split lines `class/name.mp4 label`."""
    table_path = layouts.find(root, layouts.DARK48_TABLE)
    if table_path is None:
        where = ", ".join(str(root / p) for p in layouts.DARK48_TABLE)
        raise ManifestError(f"Dark-48 class table not found (looked for {where})")
    table = read_class_table(table_path)

    def parse(line: str, where: str) -> tuple[str, int]:
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise ManifestError(f"{where}: expected 'class/name.mp4 label', got {line!r}")
        label = table.index(int(parts[1]), where)
        _check_folder(parts[0], label, table.names, where, int(parts[1]))
        return _resolve(root, parts[0], layouts.VIDEO_DIRS["dark48"], where, strict), label

    return _collect(_lines(list_path), list_path, parse, table.names, strict)


def read_csv(root: Path, csv_path: Path, strict: bool = True) -> Manifest:
    """Generic `path,label`; label is a class name or an index. Classes come from
    `classes.txt` beside the CSV when present, else from the sorted label names."""
    rows = list(_csv_rows(csv_path, ("path", "label")))
    classes_file = csv_path.parent / "classes.txt"
    if classes_file.is_file():
        classes = [n for _, n in _lines(classes_file)]
    else:
        names = {r[1].strip() for _, r in rows if len(r) == 2 and not r[1].strip().isdigit()}
        if not names:
            raise ManifestError(f"{csv_path}: numeric labels need a classes.txt beside it")
        classes = sorted(names)

    def parse(row: list[str], where: str) -> tuple[str, int]:
        if len(row) != 2:
            raise ManifestError(f"{where}: expected 'path,label', got {row!r}")
        rel, raw = row[0].strip(), row[1].strip()
        if raw.isdigit():
            label = ClassTable(classes).index(int(raw), where)
        elif raw in classes:
            label = classes.index(raw)
        else:
            raise ManifestError(f"{where}: unknown class {raw!r}")
        return _resolve(root, rel, (), where, strict), label

    return _collect(rows, csv_path, parse, classes, strict)


def read_unlabelled(root: Path, csv_path: Path) -> list[str]:
    """Videos of an unlabelled list (UG2's `VideoID,Video`; any CSV with a `Video` or `path`
    column; or one path per row), for `dlkdd predict --list` and `data check`; missing
    files are kept for the check to report. Videos are looked for where UG2 keeps them."""
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: list file not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1) if "".join(r).strip()]
    header = [c.strip() for c in rows[0][1]] if rows else []
    column = next((header.index(c) for c in ("Video", "path") if c in header), None)
    if column is not None:
        rows = rows[1:]
    paths = []
    for lineno, row in rows:
        rel = row[column if column is not None else min(1, len(row) - 1)].strip()
        if not rel:
            raise ManifestError(f"{csv_path}:{lineno}: no video in {row!r}")
        paths.append(_resolve(root, rel, layouts.VIDEO_DIRS["ug2"], "", strict=False))
    return paths


def read_manifest(fmt: str, root: Path, list_path: Path, strict: bool = True) -> Manifest:
    """Dispatches on the dataset format named in the spec."""
    root, list_path = Path(root), Path(list_path)
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset root not found")
    if fmt in ("arid", "arid_v1_5"):
        return read_arid(root, list_path, layouts.VIDEO_DIRS[fmt], strict)
    if fmt == "ug2":
        return read_ug2(root, list_path, strict)
    if fmt == "dark48":
        return read_dark48(root, list_path, strict)
    if fmt == "csv":
        return read_csv(root, list_path, strict)
    raise ManifestError(f"unknown dataset format {fmt!r}")


def hold_out(manifest: Manifest, fraction: float, seed: int) -> tuple[Manifest, Manifest]:
    """Deterministic per-class split of a training list into (train, val) for datasets
    whose official protocol has no validation list (ARID, Dark-48, UG2). Every class with
    two or more clips keeps at least one for validation."""
    rng = random.Random(seed)
    train, val = [], []
    for label in range(len(manifest.classes)):
        group = [item for item in manifest.items if item[1] == label]
        rng.shuffle(group)
        n_val = max(round(len(group) * fraction), 1) if len(group) > 1 else 0
        val += group[:n_val]
        train += group[n_val:]
    return Manifest(sorted(train), manifest.classes), Manifest(sorted(val), manifest.classes)


def resolve_list(cfg: DatasetConfig, subset: str, given: Path | None) -> Path:
    """A list given in the spec (relative to the root when relative), else the default."""
    root = Path(cfg.root)
    if given is not None:
        return given if given.is_absolute() or given.is_file() else root / given
    if cfg.format == "ug2" and subset == "test":
        raise ManifestError(
            f"{root}: UG2+ ARID1.1 ships no labelled test list (its validation CSV "
            "ARID1.1_t1_validation_gt_pub.csv has no labels); set dataset.test_list to a "
            "labelled CSV 'VideoID,Video,ClassID'"
        )
    return layouts.default_list(cfg.format, root, cfg.split, subset)


def load_splits(cfg: DatasetConfig) -> dict[str, Manifest]:
    """The train / val / test manifests a job uses, from the spec's dataset block.

    Validation: `val_list` when given (`other` = ARID's third official list), a csv
    dataset's `val.csv`, else a stratified hold-out of the training list."""
    fmt, root = cfg.format, Path(cfg.root)
    train = read_manifest(fmt, root, resolve_list(cfg, "train", cfg.train_list))
    test = read_manifest(fmt, root, resolve_list(cfg, "test", cfg.test_list))
    if cfg.val_list == "other":
        val = read_manifest(fmt, root, layouts.default_list(fmt, root, cfg.split, "other"))
    elif cfg.val_list is not None:
        val = read_manifest(fmt, root, resolve_list(cfg, "val", Path(cfg.val_list)))
    elif fmt == "csv" and (found := layouts.find_list(fmt, root, cfg.split, "val")):
        val = read_manifest(fmt, root, found)
    else:
        train, val = hold_out(train, cfg.val_fraction, cfg.split_seed)
    splits = {"train": train, "val": val, "test": test}
    if cfg.max_per_class:
        splits = {k: first_per_class(m, cfg.max_per_class) for k, m in splits.items()}
    return splits


def first_per_class(manifest: Manifest, count: int) -> Manifest:
    """The first `count` clips of every class, in list order (a preflight's small dataset)."""
    seen: dict[int, int] = {}
    items = []
    for path, label in manifest.items:
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= count:
            items.append((path, label))
    return Manifest(items, manifest.classes)
