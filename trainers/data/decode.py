"""One place that turns (file, frame indices) into uint8 frames with decord.

Decord's container frame count can be wrong; indices are clamped, and if random access
still fails the stream is decoded sequentially once so the clip is still usable.
"""

from __future__ import annotations

from collections.abc import Callable

import decord
import numpy as np


class BadVideoError(RuntimeError):
    """A video cannot be opened or decoded; carries the path and the decoder's reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def open_video(path: str) -> decord.VideoReader:
    """A reader with one decode thread: parallelism comes from DataLoader workers."""
    try:
        reader = decord.VideoReader(path, num_threads=1)
    except Exception as err:  # decord raises DECORDError or RuntimeError, message varies
        raise BadVideoError(path, f"cannot open: {str(err).splitlines()[0]}") from err
    if len(reader) == 0:
        raise BadVideoError(path, "no frames")
    return reader


def read_frames(
    path: str, choose: Callable[[int], list[np.ndarray]]
) -> tuple[list[np.ndarray], int]:
    """Decodes the windows `choose(video_len)` picks, each frame once, as [T, H, W, C] arrays.

    Returns the windows and the frame count actually used (after clamping)."""
    reader = open_video(path)
    n = len(reader)
    windows = [np.minimum(w, n - 1) for w in choose(n)]
    wanted = np.unique(np.concatenate(windows))
    try:
        frames = reader.get_batch(wanted.tolist()).asnumpy()
    except Exception:
        frames, n = _decode_sequential(path, reader)
        windows = [np.minimum(w, n - 1) for w in choose(n)]
        return [frames[w] for w in windows], n
    _check_shape(path, frames)
    lookup = {int(f): i for i, f in enumerate(wanted)}
    return [frames[[lookup[int(f)] for f in w]] for w in windows], n


def _decode_sequential(path: str, reader: decord.VideoReader) -> tuple[np.ndarray, int]:
    """Fallback when the index is wrong: walk the stream to learn its true length."""
    reader.seek(0)
    frames = []
    while True:
        try:
            frames.append(reader.next().asnumpy())
        except (StopIteration, Exception):
            break
    if not frames:
        raise BadVideoError(path, "no decodable frames")
    stacked = np.stack(frames)
    _check_shape(path, stacked)
    return stacked, len(frames)


def _check_shape(path: str, frames: np.ndarray) -> None:
    """decord mis-strides some narrow widths (16 or 48 px; decord2 also 32, 96, 144) and
    returns frames with 4 or 6 'channels': refuse them rather than train on garbage."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise BadVideoError(path, f"decoder returned malformed frames {frames.shape}")
