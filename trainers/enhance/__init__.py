"""Enhancement methods the teachers see: `build(name, **params)` -> batched nn.Module.

Every method maps a float batch [B, C, T, H, W] in [0, 1] to the same shape and range, on
whatever device the batch lives on, so enhancement runs next to the model, not in loaders.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from trainers.enhance import zero_dce
from trainers.enhance.classic import GammaCorrection, HistogramEqualisation, Identity, Sequence

NAMES = ("identity", "gic", "he", "gic_he", "zero_dce")


def build(name: str, gamma: float = 2.0, weights: str | Path | None = None) -> nn.Module:
    """The enhancement called `name`; `weights` is a local Zero-DCE state_dict file."""
    if name == "identity":
        module: nn.Module = Identity()
    elif name == "gic":
        module = GammaCorrection(gamma)
    elif name == "he":
        module = HistogramEqualisation()
    elif name == "gic_he":
        module = Sequence(GammaCorrection(gamma), HistogramEqualisation())
    elif name == "zero_dce":
        if weights is None:
            raise ValueError(
                "zero_dce needs weights=PATH (train them with `dlkdd enhance train-zero-dce`)"
            )
        module = zero_dce.ZeroDCE(zero_dce.load(Path(weights)))
    else:
        raise ValueError(f"unknown enhancement {name!r}; choose from {', '.join(NAMES)}")
    return module.eval()
