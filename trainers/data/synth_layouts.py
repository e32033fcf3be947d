"""Synthetic dark videos laid out exactly as ARID v1.0 / v1.5, Dark-48 and UG2+ ship.

For tests and `--preflight` rehearsals of the real readers: the list files, class tables
and folders are the owners' (names, separators, id offsets, a class table without a final
newline); the videos are the synthetic dark motions (`synth.py`), class k showing motion
k mod 6, so datasets with more classes than motions repeat motions across classes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainers.data.manifests import ARID_CLASSES
from trainers.data.synth import MOTIONS, SynthConfig, darken, render_clip, write_video

FORMATS = ("arid", "arid_v1_5", "dark48", "ug2")


def dark48_classes(n: int = 48) -> list[str]:
    return [f"dark_action_{i:02d}" for i in range(n)]


def _clips(
    videos: Path,
    classes: list[str] | tuple[str, ...],
    count: int,
    name: Callable[[str, int, int], str],
    cfg: SynthConfig,
    rng: np.random.Generator,
) -> list[tuple[str, int]]:
    """`count` dark clips of every class under `videos`, named `name(class, n, i)` (n-th of
    its class, i-th overall); returns (relative path, label) in list order."""
    rows = []
    for label, cls in enumerate(classes):
        for n in range(count):
            rel = name(cls, n, len(rows))
            frames = render_clip(MOTIONS[label % len(MOTIONS)], cfg, rng)
            write_video(videos / rel, darken(frames, rng, rng.uniform(*cfg.gain)), cfg.fps)
            rows.append((rel, label))
    return rows


def _write(path: Path, lines: list[str], final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""))


def _arid_like(root: Path, fmt: str, per_class: dict[str, int], cfg: SynthConfig, split: int):
    """ARID: `Class/Class_S_N.ext`, lists `index<TAB>label<TAB>path`, tab mapping table."""
    v15 = fmt == "arid_v1_5"
    videos = root / ("clips_v1.5" if v15 else "clips_v1/avi")
    if not v15:
        os.symlink("clips_v1/avi", root / "data")  # as the official repository has it
    _write(root / "list_cvt/mapping_table.txt", [f"{i}\t{c}" for i, c in enumerate(ARID_CLASSES)])
    rng = np.random.default_rng(cfg.seed)
    index = 0
    ext = "mp4" if v15 else "avi"
    for subset, count in per_class.items():
        rows = _clips(videos, ARID_CLASSES, count,
                      lambda c, n, _, s=subset: f"{c}/{c}_{s}_{n + 1}.{ext}", cfg, rng)  # fmt: skip
        lines = [f"{index + i}\t{label}\t{rel}" for i, (rel, label) in enumerate(rows)]
        index += len(rows)
        name = (
            f"split_{split}/split{split}_{subset}.txt" if v15 else f"ARID_split{split}_{subset}.txt"
        )
        _write(root / "list_cvt" / name, lines)


def _dark48(root: Path, per_class: dict[str, int], cfg: SynthConfig, split: int) -> None:
    """Dark-48: `annotations/classInd.txt` (no final newline), lines `class/name.mp4 label`."""
    classes = dark48_classes()
    _write(root / "annotations/classInd.txt",
           [f"{i}\t{c}" for i, c in enumerate(classes)], final_newline=False)  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    for subset, count in per_class.items():
        rows = _clips(root, classes, count,
                      lambda c, n, _, s=subset: f"{c}/{c}_{s}_{n:03d}.mp4", cfg, rng)  # fmt: skip
        _write(root / f"annotations/{subset}_split{split}.txt", [f"{r} {k}" for r, k in rows])


def _ug2(root: Path, per_class: dict[str, int], cfg: SynthConfig) -> None:
    """UG2+ ARID1.1 track 2.1: six classes with ids 5..10, a labelled train CSV and the
    unlabelled public validation CSV (`VideoID,Video`, anonymised `N.mp4`)."""
    classes = ARID_CLASSES[5:]
    _write(root / "list_cvt/mapping_table_t1.txt", [f"{i + 5}\t{c}" for i, c in enumerate(classes)])
    rng = np.random.default_rng(cfg.seed)
    train = _clips(root / "train_data", classes, per_class["train"],
                   lambda c, n, _: f"{c}/{c}_{n + 1}_1.mp4", cfg, rng)  # fmt: skip
    rows = [("VideoID", "Video", "ClassID")]
    rows += [(str(i), rel, str(label + 5)) for i, (rel, label) in enumerate(train)]
    test = _clips(root / "test_data", classes, per_class.get("test", 0),
                  lambda c, n, i: f"{i}.mp4", cfg, rng)  # fmt: skip
    anonymous = [("VideoID", "Video")] + [(str(i), rel) for i, (rel, _) in enumerate(test)]
    for name, table in (("train", rows), ("validation_gt", anonymous)):
        with (root / f"list_cvt/ARID1.1_t1_{name}_pub.csv").open("w", newline="") as f:
            csv.writer(f).writerows(table)


def synthesize_layout(
    root: Path,
    fmt: str,
    per_class: dict[str, int] | None = None,
    split: int = 1,
    frames: int = 16,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Writes a dataset in `fmt`'s official layout under `root`; returns `root`.

    `per_class` maps each subset (train, test, and ARID's other) to clips per class."""
    if fmt not in FORMATS:
        raise ValueError(f"no official layout for {fmt!r}; choose from {', '.join(FORMATS)}")
    per_class = per_class or {"train": 3, "test": 2, "other": 1}
    if fmt != "arid":
        per_class = {k: v for k, v in per_class.items() if k != "other"}
    cfg = SynthConfig(frames=frames, size=size, seed=seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if fmt in ("arid", "arid_v1_5"):
        _arid_like(root, fmt, per_class, cfg, split)
    elif fmt == "dark48":
        _dark48(root, per_class, cfg, split)
    else:
        _ug2(root, per_class, cfg)
    return root
