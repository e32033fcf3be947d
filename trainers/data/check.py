"""Finds unreadable videos before training does: missing, unopenable or undecodable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainers.data.decode import BadVideoError, read_frames


def check_video(path: str) -> str | None:
    """None when the file decodes at its first, middle and last frame, else the reason."""
    if not Path(path).is_file():
        return "file not found"
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
