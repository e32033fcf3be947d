"""PNG figures a researcher looks at: enhancement previews and ablation plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

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
    zero_dce_weights: Path | None,
    num_frames: int,
) -> None:
    """Rows: original then each method; columns: evenly spaced frames of the video."""
    [frames], _ = read_frames(
        str(video), lambda n: [np.linspace(0, n - 1, num_frames).round().astype(int)]
    )
    batch = torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0).float() / 255
    rows = [("original", batch)]
    for name in methods:
        if name != "identity":
            module = enhance.build(name, gamma=gamma, weights=zero_dce_weights)
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
