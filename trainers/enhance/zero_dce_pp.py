"""Zero-DCE++ (Li et al., TPAMI 2021): Zero-DCE with depthwise-separable layers (10,561
parameters), curve maps estimated on a downscaled frame, and one 3-channel map applied at
every iteration. Names follow the authors' `model.py` (`e_convK.depth_conv`,
`e_convK.point_conv`) so that their released weights load unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainers.enhance import curves
from trainers.enhance.curves import CurveNet


class SeparableConv(nn.Module):
    """A 3x3 depthwise convolution then a 1x1 pointwise one (the authors' `CSDN_Tem`)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class DCEPPNet(CurveNet):
    """One curve map for all iterations, estimated at 1/`scale` of the frame's size.

    The authors train at scale 1 and enhance 1200x900 photos at scale 12; the weights do
    not depend on the scale, only the cost and the detail of the maps do."""

    smoothness_weight = 1600.0  # the authors' Zero-DCE++ weight (Zero-DCE: 200)
    darkening_hint = "They cannot serve as a low-light enhancement."

    def __init__(self, scale: int = 1) -> None:
        super().__init__(SeparableConv, maps=3, scale=scale)


def load(path: Path, scale: int = 1, check: bool = True) -> DCEPPNet:
    """A Zero-DCE++ network at `scale` with the weights of a local file; see `curves.load`."""
    return curves.load(DCEPPNet(scale), path, check)
