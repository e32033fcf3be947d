"""Enhancement methods: the formulas hold, shape/range/device are kept, Zero-DCE learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers import enhance
from trainers.data.frames import sample_frames
from trainers.data.manifests import read_csv
from trainers.enhance import zero_dce


def dark_batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 3, 4, 16, 16, generator=g) * 0.08).round(decimals=3)


def test_gic_matches_the_gamma_formula_within_one_level() -> None:
    levels = torch.arange(256, dtype=torch.float32)
    video = (levels / 255).view(1, 1, 1, 16, 16).expand(1, 3, 1, 16, 16)
    out = enhance.build("gic", gamma=2.2)(video) * 255
    expected = 255 * (levels / 255) ** (1 / 2.2)
    assert (out[0, 0, 0].flatten() - expected).abs().max() <= 1


def test_he_flattens_a_skewed_histogram() -> None:
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(64, 64, generator=g) ** 4 * 0.25  # most pixels near black
    video = grey.view(1, 1, 1, 64, 64).expand(1, 3, 1, 64, 64).contiguous()
    out = enhance.build("he")(video)[0, 0, 0]
    before = torch.histc(grey, bins=4, min=0, max=1)
    after = torch.histc(out, bins=4, min=0, max=1)
    assert before[0] == 64 * 64  # all in the darkest quarter
    assert after.min() > 0.15 * 64 * 64  # spread over the whole range
    assert out.max() == pytest.approx(1.0) and out.min() == pytest.approx(0.0)


def test_he_keeps_a_constant_frame() -> None:
    video = torch.full((1, 3, 2, 8, 8), 0.2)
    assert torch.allclose(enhance.build("he")(video), video, atol=1 / 255)


@pytest.mark.parametrize("name", ["identity", "gic", "he", "gic_he", "zero_dce"])
def test_every_method_keeps_shape_range_and_device(name: str, tmp_path: Path) -> None:
    weights = tmp_path / "zd.pt"
    zero_dce.save(zero_dce.DCENet(), weights)
    module = enhance.build(name, weights=weights)
    video = dark_batch()
    out = module(video)
    assert out.shape == video.shape and out.device == video.device
    assert out.dtype == video.dtype and out.min() >= 0 and out.max() <= 1
    if name != "identity":
        assert out.mean() > video.mean()  # all of them brighten dark video


def test_unknown_enhancement_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown enhancement 'clahe'.*zero_dce"):
        enhance.build("clahe")


def test_zero_dce_without_weights_says_how_to_get_them() -> None:
    with pytest.raises(ValueError, match="train-zero-dce"):
        enhance.build("zero_dce")


def test_zero_dce_has_the_papers_size() -> None:
    assert sum(p.numel() for p in zero_dce.DCENet().parameters()) == 79416


def test_zero_dce_training_lowers_loss_and_brightens_towards_target(synth_root: Path) -> None:
    paths = [p for p, _ in read_csv(synth_root, synth_root / "train.csv").items]
    frames = sample_frames(paths, per_video=2, max_size=32)
    net, history = zero_dce.train(frames, steps=120, batch_size=8, lr=1e-3)
    assert sum(history[-10:]) / 10 < 0.5 * sum(history[:10]) / 10
    with torch.no_grad():
        before, after = frames.mean(), net(frames)[0].mean()
    assert before < 0.06
    assert abs(after - zero_dce.EXPOSURE_TARGET) < abs(before - zero_dce.EXPOSURE_TARGET) / 2


def test_zero_dce_weights_round_trip(tmp_path: Path) -> None:
    net = zero_dce.DCENet()
    zero_dce.save(net, tmp_path / "w.pt")
    video = dark_batch()
    assert torch.equal(
        zero_dce.ZeroDCE(net)(video), enhance.build("zero_dce", weights=tmp_path / "w.pt")(video)
    )
