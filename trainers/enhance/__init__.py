"""Enhancement methods the teachers see: `build(name, **params)` -> batched nn.Module.

Every method maps a float batch [B, C, T, H, W] in [0, 1] to the same shape and range, on
whatever device the batch lives on, so enhancement runs next to the model, not in loaders.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from trainers.enhance import zero_dce, zero_dce_pp
from trainers.enhance.classic import GammaCorrection, HistogramEqualisation, Identity, Sequence
from trainers.enhance.curves import CurveEnhancer, CurveNet

NAMES = ("identity", "gic", "he", "gic_he", "zero_dce", "zero_dce_pp")
# The learned enhancements: a fresh network of each, trained at scale 1 as the authors do.
CURVE_NETS: dict[str, Callable[[], CurveNet]] = {
    "zero_dce": zero_dce.DCENet,
    "zero_dce_pp": zero_dce_pp.DCEPPNet,
}


def build(
    name: str, gamma: float = 2.0, weights: str | Path | None = None, scale: int = 1
) -> nn.Module:
    """The enhancement called `name`; `weights` is a local weights file for zero_dce and
    zero_dce_pp (refused when it darkens, see `curves.load`), `scale` zero_dce_pp's."""
    if name == "identity":
        module: nn.Module = Identity()
    elif name == "gic":
        module = GammaCorrection(gamma)
    elif name == "he":
        module = HistogramEqualisation()
    elif name == "gic_he":
        module = Sequence(GammaCorrection(gamma), HistogramEqualisation())
    elif name == "zero_dce":
        module = CurveEnhancer(zero_dce.load(_weights_file(name, weights)))
    elif name == "zero_dce_pp":
        module = CurveEnhancer(zero_dce_pp.load(_weights_file(name, weights), scale))
    else:
        raise ValueError(f"unknown enhancement {name!r}; choose from {', '.join(NAMES)}")
    return module.eval()


def _weights_file(name: str, weights: str | Path | None) -> Path:
    if weights is None:
        raise ValueError(
            f"{name} needs weights=PATH "
            f"(train them with `dlkdd enhance train-zero-dce --variant {name}`)"
        )
    return Path(weights)
