"""Synthetic dark actions: classes that differ only in motion, written as real H.264 files.

Each clip shows a textured object on a textured background; the class is *how* the object
moves (rises, falls, sways, pulses, circles, spins). All motions are unchanged by a
horizontal flip, so training-time flips keep labels valid. Frames are then made dark like
a low-light sensor: low gain, shot and read noise, 8-bit quantisation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

MOTIONS = ("rise", "fall", "sway", "pulse", "circle", "spin")


@dataclass(frozen=True)
class SynthConfig:
    num_classes: int = 4
    train_per_class: int = 16
    val_per_class: int = 4
    test_per_class: int = 4
    frames: int = 16
    size: int = 64
    fps: int = 15
    gain: tuple[float, float] = (0.05, 0.09)  # scene brightness kept by the "sensor"
    seed: int = 0


def _texture(rng: np.random.Generator, h: int, w: int, lo: float, hi: float) -> np.ndarray:
    """Smooth random colour texture: block noise upsampled, values in [lo, hi]."""
    coarse = rng.uniform(lo, hi, size=(max(h // 4, 2), max(w // 4, 2), 3))
    rows = np.linspace(0, coarse.shape[0] - 1, h).round().astype(int)
    cols = np.linspace(0, coarse.shape[1] - 1, w).round().astype(int)
    return coarse[rows][:, cols]


def _object_mask(motion: str, t: float, size: int, phase: float, yy, xx) -> np.ndarray:
    """Where the object is at time t in [0, 1] for a given motion."""
    c, r = size / 2, size / 5
    cy, cx, radius = c, c, r
    if motion == "rise":
        cy = size * (0.85 - 0.7 * t)
    elif motion == "fall":
        cy = size * (0.15 + 0.7 * t)
    elif motion == "sway":
        cx = c + size * 0.3 * np.sin(2 * np.pi * (1.5 * t + phase))
    elif motion == "pulse":
        radius = r * (0.6 + 0.9 * (0.5 + 0.5 * np.sin(2 * np.pi * (1.5 * t + phase))))
    elif motion == "circle":
        angle = 2 * np.pi * (t + phase)
        cy, cx = c + size * 0.25 * np.sin(angle), c + size * 0.25 * np.cos(angle)
    elif motion == "spin":  # a bar rotating about the centre
        angle = np.pi * (t + phase)
        along = (xx - c) * np.cos(angle) + (yy - c) * np.sin(angle)
        across = -(xx - c) * np.sin(angle) + (yy - c) * np.cos(angle)
        return (np.abs(along) < size * 0.4) & (np.abs(across) < size * 0.08)
    return (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2


def render_clip(motion: str, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """A well-lit clip [T, H, W, 3] float in [0, 255] showing one motion."""
    s = cfg.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    background = _texture(rng, s, s, 60, 160)
    body = _texture(rng, s, s, 170, 255)
    phase = rng.uniform(0, 1)
    frames = np.empty((cfg.frames, s, s, 3), np.float32)
    for i in range(cfg.frames):
        t = i / max(cfg.frames - 1, 1)
        mask = _object_mask(motion, t, s, phase, yy, xx)[..., None]
        frames[i] = np.where(mask, body, background)
    return frames


def darken(frames: np.ndarray, rng: np.random.Generator, gain: float) -> np.ndarray:
    """Low-light sensor model: scale, Poisson-like shot noise, Gaussian read noise, uint8."""
    signal = frames * gain
    shot = rng.normal(0, 1, frames.shape) * np.sqrt(np.maximum(signal, 0)) * 0.5
    read = rng.normal(0, 1.2, frames.shape)
    return np.clip(np.round(signal + shot + read), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """H.264 through PyAV (libx264, yuv420p), the codec real datasets use; low CRF so the
    dark signal survives compression. x264's macroblock-tree rate control is off: with it,
    the same frames encoded differently from one run to the next (threads=1 did not help),
    and so did every score of a demo."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "preset": "fast", "g": "8", "x264-params": "mbtree=0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def synthesize(out: Path, cfg: SynthConfig = SynthConfig()) -> dict[str, Path]:
    """Writes videos, `classes.txt` and `train.csv` / `val.csv` / `test.csv`; returns the CSVs.

    Deterministic: the same config and seed give byte-identical frames before encoding."""
    if not 2 <= cfg.num_classes <= len(MOTIONS):
        raise ValueError(f"num_classes must be in 2..{len(MOTIONS)}, got {cfg.num_classes}")
    if cfg.size < 64 or cfg.size % 16:
        raise ValueError(
            f"size must be a multiple of 16 and at least 64 (decord mis-decodes some narrower"
            f" widths), got {cfg.size}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(MOTIONS[: cfg.num_classes])
    (out / "classes.txt").write_text("\n".join(classes) + "\n")
    counts = {"train": cfg.train_per_class, "val": cfg.val_per_class, "test": cfg.test_per_class}
    rng = np.random.default_rng(cfg.seed)
    lists = {}
    for subset, per_class in counts.items():
        rows = []
        for label, motion in enumerate(classes):
            for i in range(per_class):
                rel = f"videos/{motion}/{subset}_{motion}_{i:04d}.mp4"
                dark = darken(render_clip(motion, cfg, rng), rng, rng.uniform(*cfg.gain))
                write_video(out / rel, dark, cfg.fps)
                rows.append((rel, label))
        lists[subset] = out / f"{subset}.csv"
        with lists[subset].open("w", newline="") as f:
            csv.writer(f).writerows([("path", "label"), *rows])
    return lists
