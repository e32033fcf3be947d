"""Multi-view prediction on original video: what a promoted student is for."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainers.config import ClipConfig
from trainers.data.clips import ClipDataset
from trainers.preprocess import model_input, to_unit


@torch.no_grad()
def predict(
    model: nn.Module,
    meta: dict[str, Any],
    paths: list[str],
    enhancer: nn.Module | None = None,
    top_k: int = 3,
) -> list[list[tuple[str, float]]]:
    """For each video: top-k (class, probability), softmax of view-averaged logits."""
    clip = ClipConfig.model_validate(meta["clip"])
    dataset = ClipDataset([(p, 0) for p in paths], clip, "test")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    device = params[0].device if params else torch.device("cpu")
    out = []
    for i in range(len(paths)):
        views = dataset.load(paths[i], rng=None)  # deterministic views, no randomness used
        x = model_input(to_unit(views, device), enhancer, clip.mean, clip.std, torch.float32)
        probs = model(x).float().mean(0).softmax(0)
        top = probs.topk(min(top_k, len(probs)))
        out.append(
            [(meta["classes"][j], float(p)) for p, j in zip(top.values, top.indices, strict=True)]
        )
    return out
