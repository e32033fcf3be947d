"""`build(arch, num_classes, pretrained=None)`: the video backbones teachers and students use."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from trainers.models import video_resnet

log = logging.getLogger(__name__)

ARCHS = {
    "tiny": video_resnet.tiny,
    "r3d_18": video_resnet.r3d_18,
    "mc3_18": video_resnet.mc3_18,
    "r2plus1d_18": video_resnet.r2plus1d_18,
    "r2plus1d_34": video_resnet.r2plus1d_34,
}


def build(arch: str, num_classes: int, pretrained: str | Path | None = None) -> nn.Module:
    """A fresh model, or one started from a local VideoResNet state_dict.

    A checkpoint trained on another label set (Kinetics-400, IG-65M) keeps its backbone and
    gets a new head; that is logged so nobody mistakes it for a full load."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    model = ARCHS[arch](num_classes)
    if pretrained is not None:
        load_backbone(model, Path(pretrained))
    return model


def load_backbone(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    head = model.fc.weight.shape
    if "fc.weight" in state and state["fc.weight"].shape != head:
        log.warning(
            "%s: head has %d classes, model needs %d; loading the backbone, new head",
            path, state["fc.weight"].shape[0], head[0],
        )  # fmt: skip
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        state.update({f"fc.{k}": v for k, v in model.fc.state_dict().items()})
    model.load_state_dict(state, strict=True)


def channels_last_inputs(model: nn.Module) -> nn.Module:
    """Feeds the model channels_last_3d inputs, so convolutions take the channels-last
    kernels (fast on GPU), while its parameters stay contiguous: DeepSpeed broadcasts and
    ZeRO flattens parameters through byte views that a channels-last weight refuses."""

    def to_channels_last(_: nn.Module, args: tuple) -> tuple:
        return (args[0].contiguous(memory_format=torch.channels_last_3d), *args[1:])

    model.register_forward_pre_hook(to_channels_last)
    return model
