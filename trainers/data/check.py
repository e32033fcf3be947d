"""Finds what would break training before it starts: malformed list rows, missing,
unopenable or undecodable videos (`dlkdd data check`, `--preflight`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainers.data.decode import BadVideoError, read_frames
from trainers.data.layouts import UG2_UNLABELLED, default_list, find, official_lists
from trainers.data.manifests import read_manifest, read_unlabelled

MISSING = "file not found"


def check_video(path: str) -> str | None:
    """None when the file decodes at its first, middle and last frame, else the reason."""
    if not Path(path).is_file():
        return MISSING
    try:
        read_frames(path, lambda n: [np.array([0, n // 2, n - 1])])
    except BadVideoError as err:
        return err.reason
    return None


def check_videos(
    paths: list[str], on_checked: Callable[[], None] | None = None
) -> list[tuple[str, str]]:
    """Every bad file with its reason, in input order."""
    bad = []
    for path in paths:
        reason = check_video(path)
        if reason is not None:
            bad.append((path, reason))
        if on_checked:
            on_checked()
    return bad


@dataclass
class ListReport:
    """One list of a dataset: its clips per class, malformed rows and unreadable videos."""

    name: str
    path: Path
    paths: list[str]
    labels: list[int] | None  # None for an unlabelled list (UG2's public validation CSV)
    classes: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.malformed) + len(self.missing) + len(self.undecodable)


def dataset_lists(fmt: str, root: Path, split: int, given: dict[str, Path]) -> list[ListReport]:
    """Reads every list (those given by name, else the layout's official ones) without
    stopping at the first malformed row, and finds every missing video; none is decoded."""
    lists = given or official_lists(fmt, root, split)
    if not lists:
        default_list(fmt, root, split, "train")  # raises, naming where it looked
    reports = []
    for name, path in lists.items():
        m = read_manifest(fmt, root, path, strict=False)
        labels = [label for _, label in m.items]
        reports.append(ListReport(name, path, [p for p, _ in m.items], labels, m.classes,
                                  m.problems))  # fmt: skip
    unlabelled = find(root, UG2_UNLABELLED) if fmt == "ug2" and not given else None
    if unlabelled:
        reports.append(ListReport("validation (unlabelled)", unlabelled,
                                  read_unlabelled(root, unlabelled), None))  # fmt: skip
    for r in reports:
        r.missing = [p for p in r.paths if not Path(p).is_file()]
    return reports


def check_lists(
    reports: list[ListReport], on_checked: Callable[[], None] | None = None
) -> list[ListReport]:
    """Fills in each list's undecodable videos; each file present is decoded once."""
    unique = sorted({p for r in reports for p in r.paths} - {p for r in reports for p in r.missing})
    reasons = dict(check_videos(unique, on_checked))
    for r in reports:
        r.undecodable = [(p, reasons[p]) for p in r.paths if p in reasons]
    return reports
