"""PNG figures a researcher looks at: enhancement previews and ablation plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainers import enhance  # noqa: E402
from trainers.data.decode import read_frames  # noqa: E402


def enhancement_grid(
    video: Path,
    out: Path,
    methods: list[str],
    gamma: float,
    weights: Mapping[str, Path | None],
    num_frames: int,
    scale: int = 1,
) -> None:
    """Rows: original then each method; columns: evenly spaced frames of the video.
    `weights` maps a learned method (zero_dce, zero_dce_pp) to its weights file."""
    [frames], _ = read_frames(
        str(video), lambda n: [np.linspace(0, n - 1, num_frames).round().astype(int)]
    )
    batch = torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0).float() / 255
    rows = [("original", batch)]
    for name in methods:
        if name != "identity":
            module = enhance.build(name, gamma, weights.get(name), scale)
            with torch.no_grad():
                rows.append((name, module(batch)))
    fig, axes = plt.subplots(
        len(rows), num_frames, figsize=(1.8 * num_frames, 1.9 * len(rows)), squeeze=False
    )
    for r, (name, clip) in enumerate(rows):
        images = clip[0].permute(1, 2, 3, 0).numpy()  # [T, H, W, C]
        for c in range(num_frames):
            ax = axes[r][c]
            ax.imshow(images[c].clip(0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{name}\nmean {images.mean() * 255:.0f}", fontsize=9)
    fig.suptitle(Path(video).name, fontsize=10)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def gain_per_enhancement(rows: list[dict], out: Path) -> Path:
    """Test gain over the control of each enhancement's student chosen on validation (never
    on test: the maximum over test scores would flatter every enhancement) and the mean of
    its students; the control is the zero line."""
    students = [r for r in rows if r["kind"] == "student"]
    names = sorted({r["enhancement"] for r in students})
    chosen = [max((r for r in students if r["enhancement"] == n), key=lambda r: r["val_top1"])
              for n in names]  # fmt: skip
    mean = [float(np.mean([r["gain_test"] for r in students if r["enhancement"] == n]))
            for n in names]  # fmt: skip
    fig, ax = plt.subplots(figsize=(1.6 * max(len(names), 2) + 2, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [r["gain_test"] for r in chosen], 0.4, label="student best on val")
    ax.bar(x + 0.2, mean, 0.4, label="mean of students")
    ax.axhline(0, color="black", linewidth=0.8, label="control (alpha = 0)")
    ax.use_sticky_edges = False  # bars all below zero would hide the control's line at the top
    ax.margins(y=0.08)
    ax.set_xticks(x, names)
    ax.set_ylabel("test top-1 gain over control")
    ax.set_title("Distillation gain per teacher enhancement")
    ax.legend(fontsize=8)
    return _save(fig, out)


def temperature_alpha_map(rows: list[dict], out: Path) -> Path:
    """Validation top-1 over (T, alpha), one panel per enhancement, on shared axes and one
    colour scale (the table's metric)."""
    students = [r for r in rows if r["kind"] == "student"]
    names = sorted({r["enhancement"] for r in students}) or ["-"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False,
                             sharex=True, sharey=True)  # fmt: skip
    values = [r["val_top1"] for r in students] or [0.0]
    for ax, name in zip(axes[0], names, strict=True):
        pts = [r for r in students if r["enhancement"] == name]
        sc = ax.scatter([r["temperature"] for r in pts], [r["alpha"] for r in pts],
                        c=[r["val_top1"] for r in pts], cmap="viridis", s=120,
                        vmin=min(values), vmax=max(values))  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("temperature T")
        ax.set_title(name)
    axes[0][0].set_ylabel("alpha")
    fig.colorbar(sc, ax=axes[0].tolist(), label="val top-1")
    return _save(fig, out)


def gain_intervals(configs: list[dict], out: Path) -> Path:
    """Each student configuration's test gain over the control, paired by seed: the mean
    and its 95 % interval (a dot alone where there is one seed), best on validation on top."""
    students = [c for c in configs if c["kind"] == "student"][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(students), 2) + 1.5))
    y = np.arange(len(students))
    for i, c in zip(y, students, strict=True):
        gain = c["_gain"]
        if gain.n >= 2:
            ax.errorbar(gain.mean, i, xerr=[[gain.mean - gain.low], [gain.high - gain.mean]],
                        fmt="o", color="tab:blue", capsize=3)  # fmt: skip
        else:
            ax.plot(gain.mean, i, "o", color="tab:gray")
    ax.axvline(0, color="black", linewidth=0.8, label="control (alpha = 0)")
    ax.set_yticks(y, [f"{c['enhancement']} T={c['temperature']:.3g} a={c['alpha']:.2g} "
                      f"({c['gain_pairs']} seed{'s' * (c['gain_pairs'] != 1)})"
                      for c in students], fontsize=8)  # fmt: skip
    ax.set_xlabel("test top-1 gain over control (mean, 95% CI over seeds)")
    ax.set_title("Distillation gain per configuration (top: best on validation)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(out)
