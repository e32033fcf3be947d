"""The VideoResNet family matches torchvision's parameter scheme; heads can be replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers import models

# Totals at 400 classes, as torchvision's builders give them.
EXPECTED = {"r3d_18": 33_371_472, "mc3_18": 11_695_440, "r2plus1d_18": 31_505_325}
KEYS = {
    "r3d_18": {"stem.0.weight": (64, 3, 3, 7, 7), "layer1.0.conv1.0.weight": (64, 64, 3, 3, 3),
               "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1), "fc.weight": (400, 512)},
    "mc3_18": {"layer2.0.conv1.0.weight": (128, 64, 1, 3, 3),
               "layer1.1.conv2.0.weight": (64, 64, 3, 3, 3)},
    "r2plus1d_18": {"stem.0.weight": (45, 3, 1, 7, 7), "stem.3.weight": (64, 45, 3, 1, 1),
                    "layer1.0.conv1.0.0.weight": (144, 64, 1, 3, 3),
                    "layer1.0.conv1.0.3.weight": (64, 144, 3, 1, 1),
                    "layer4.1.conv2.0.3.weight": (512, 1152, 3, 1, 1)},
}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_parameter_totals_match_torchvision(arch: str) -> None:
    model = models.build(arch, 400)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[arch]


@pytest.mark.parametrize("arch", sorted(KEYS))
def test_parameter_names_and_shapes_follow_videoresnet(arch: str) -> None:
    state = models.build(arch, 400).state_dict()
    for key, shape in KEYS[arch].items():
        assert tuple(state[key].shape) == shape, key


def test_r2plus1d_34_is_the_deeper_layout() -> None:
    state = models.build("r2plus1d_34", 359).state_dict()
    assert "layer3.5.conv2.0.3.weight" in state and "layer3.6.conv1.0.0.weight" not in state


def test_pretrained_with_another_head_keeps_backbone(tmp_path: Path) -> None:
    source = models.build("tiny", 400)
    torch.save(source.state_dict(), tmp_path / "k400.pt")
    model = models.build("tiny", 11, pretrained=tmp_path / "k400.pt")
    assert torch.equal(model.stem[0].weight, source.stem[0].weight)
    assert model.fc.weight.shape == (11, 64)


def test_pretrained_same_head_loads_strictly(tmp_path: Path) -> None:
    source = models.build("mc3_18", 5)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    model = models.build("mc3_18", 5, pretrained=tmp_path / "w.pt")
    assert torch.equal(model.fc.weight, source.fc.weight)


def test_forward_shape_on_a_tiny_clip() -> None:
    assert models.build("tiny", 4)(torch.randn(2, 3, 8, 32, 32)).shape == (2, 4)


def test_unknown_arch_is_named() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet50'"):
        models.build("resnet50", 4)


def test_channels_last_inputs_keep_parameters_contiguous() -> None:
    """DeepSpeed broadcasts parameters through byte views, which channels-last weights
    refuse; the option converts the input instead, with the same result."""
    torch.manual_seed(0)
    plain = models.build("tiny", 4)
    fast = models.channels_last_inputs(models.build("tiny", 4))
    fast.load_state_dict(plain.state_dict())
    seen = []
    fast.stem.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    clip = torch.rand(2, 3, 4, 16, 16)
    assert torch.allclose(fast(clip), plain(clip), atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last_3d)
    assert all(p.is_contiguous() for p in fast.parameters())
    for p in fast.parameters():
        p.data.view(torch.uint8)  # what DeepSpeed's broadcast does
