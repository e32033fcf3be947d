"""Zero-DCE (Guo et al., CVPR 2020): a 7-layer CNN of 3x3 convolutions (79,416 parameters)
predicts 8 per-pixel curve maps, one per iteration of the curve update.

Layer names follow the authors' release (`e_conv1` ... `e_conv7`) and the update is their
code's (see `curves`), so that their `Epoch99.pth`, copied to local disk, loads unchanged
and brightens, and weights trained here serve their tools too.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainers.enhance import curves
from trainers.enhance.curves import ITERATIONS, CurveNet


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)


class DCENet(CurveNet):
    """Full-resolution 3x3 convolutions; 24 curve maps (3 channels x 8 iterations)."""

    smoothness_weight = 200.0
    darkening_hint = (
        "Zero-DCE weights trained by dlkdd before it adopted the authors' sign do this; "
        "convert them with `dlkdd enhance convert-zero-dce OLD NEW`."
    )

    def __init__(self) -> None:
        super().__init__(conv3x3, maps=3 * ITERATIONS)


def load(path: Path, check: bool = True) -> DCENet:
    """A DCE-Net with the weights of a local file (ours or the authors'); see `curves.load`."""
    return curves.load(DCENet(), path, check)


def convert_old_sign(path: Path) -> DCENet:
    """Weights trained with dlkdd's old update x + a*x*(1 - x), converted to the authors'.

    tanh is odd, so negating the last layer negates every curve map r = -a, and
    x + r*(x^2 - x) = x + a*x*(1 - x): the converted weights give exactly the old images.
    Refuses weights that `curves.load` accepts (already converted, or the authors' own):
    converting those would make them darken."""
    net = load(path, check=False)
    if curves.darkening(net) is None:
        raise ValueError(
            f"{path}: these weights do not darken a dark image under the authors' curve "
            "update: nothing to convert (already converted, or trained with the authors' sign)"
        )
    with torch.no_grad():
        net.e_conv7.weight.neg_()
        net.e_conv7.bias.neg_()
    return net
