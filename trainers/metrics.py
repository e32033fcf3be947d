"""Classification metrics that add up across ranks: counts first, ratios at the end."""

from __future__ import annotations

import torch
import torch.distributed as dist


class Accuracy:
    """Accumulates top-1 / top-5 hits and a per-class confusion count."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        # [top1 hits, top5 hits, samples] + per-class [hits..., totals...]
        self.counts = torch.zeros(3 + 2 * num_classes, dtype=torch.float64, device=device)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        k = min(5, self.num_classes)
        top = logits.topk(k, dim=1).indices
        hit1 = top[:, 0] == labels
        hit5 = (top == labels[:, None]).any(1)
        c = self.num_classes
        self.counts[0] += hit1.sum()
        self.counts[1] += hit5.sum()
        self.counts[2] += len(labels)
        self.counts[3 : 3 + c] += torch.bincount(labels[hit1], minlength=c).to(self.counts)
        self.counts[3 + c :] += torch.bincount(labels, minlength=c).to(self.counts)

    def compute(self, prefix: str) -> dict[str, float]:
        """Sums over all ranks (when distributed), then top1 / top5 / mean-class accuracy."""
        counts = self.counts.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        c = self.num_classes
        n = counts[2].clamp(min=1)
        per_class_total = counts[3 + c :]
        seen = per_class_total > 0
        per_class = counts[3 : 3 + c][seen] / per_class_total[seen]
        return {
            f"{prefix}_top1": float(counts[0] / n),
            f"{prefix}_top5": float(counts[1] / n),
            f"{prefix}_mean_class": float(per_class.mean()) if seen.any() else 0.0,
        }
