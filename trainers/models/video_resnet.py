"""VideoResNet in plain PyTorch, parameter-for-parameter compatible with torchvision's.

torchvision has no CPU wheel for this torch, so the architecture is re-stated here with the
same module names and shapes (`stem.0.weight`, `layer1.0.conv1.0.0.weight`, `fc.weight`),
which lets Kinetics-400 / IG-65M checkpoints saved from torchvision load with strict=True.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int = 0, stride: int = 1):
        super().__init__(in_planes, out_planes, (3, 3, 3), stride, padding=1, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv2Plus1D(nn.Sequential):
    """3x3 spatial then 3x1x1 temporal convolution with `midplanes` in between (R(2+1)D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
    """1x3x3 convolution: a 2D conv per frame (the upper layers of MC3)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int = 0, stride: int = 1):
        super().__init__(
            in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


ConvMaker = type[Conv3DSimple] | type[Conv2Plus1D] | type[Conv3DNoTemporal]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_builder: ConvMaker,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # R(2+1)D keeps the parameter count of the 3D block it replaces.
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        self.conv1 = nn.Sequential(
            conv_builder(inplanes, planes, midplanes, stride),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


def basic_stem(width: int = 64) -> nn.Sequential:
    """3x7x7 conv, spatial stride 2 (R3D, MC3)."""
    return nn.Sequential(
        nn.Conv3d(3, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def r2plus1d_stem(width: int = 64) -> nn.Sequential:
    """(2+1)D stem: 1x7x7 to 45 channels, then 3x1x1 (R(2+1)D)."""
    mid = 45 * width // 64
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """One class for the whole family: block type, conv per stage, depth and widths."""

    def __init__(
        self,
        conv_makers: Sequence[ConvMaker],
        layers: Sequence[int],
        stem: Callable[[int], nn.Sequential],
        num_classes: int = 400,
        widths: Sequence[int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.stem = stem(widths[0])
        self.layer1 = self._make_layer(conv_makers[0], widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(conv_makers[1], widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(conv_makers[2], widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(conv_makers[3], widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(widths[3] * BasicBlock.expansion, num_classes)
        self._init_weights()

    def _make_layer(
        self, conv_builder: ConvMaker, planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(
                    self.inplanes,
                    planes * BasicBlock.expansion,
                    kernel_size=1,
                    stride=conv_builder.get_downsample_stride(stride),
                    bias=False,
                ),
                nn.BatchNorm3d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes, conv_builder) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def r3d_18(num_classes: int) -> VideoResNet:
    return VideoResNet([Conv3DSimple] * 4, [2, 2, 2, 2], basic_stem, num_classes)


def mc3_18(num_classes: int) -> VideoResNet:
    convs = [Conv3DSimple] + [Conv3DNoTemporal] * 3
    return VideoResNet(convs, [2, 2, 2, 2], basic_stem, num_classes)


def r2plus1d_18(num_classes: int) -> VideoResNet:
    return VideoResNet([Conv2Plus1D] * 4, [2, 2, 2, 2], r2plus1d_stem, num_classes)


def r2plus1d_34(num_classes: int) -> VideoResNet:
    """The IG-65M backbone (Ghadiyaram et al.), same naming scheme."""
    return VideoResNet([Conv2Plus1D] * 4, [3, 4, 6, 3], r2plus1d_stem, num_classes)


def tiny(num_classes: int) -> VideoResNet:
    """An R3D with one block per stage and 1/8 of the width: real 3D conv, runs on CPU."""
    return VideoResNet([Conv3DSimple] * 4, [1, 1, 1, 1], basic_stem, num_classes, (8, 16, 32, 64))
