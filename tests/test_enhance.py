"""Enhancement methods: the formulas hold, shape/range/device are kept, the curve networks
compute the authors' update, read the authors' files, refuse the old sign, and learn."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.spec import parse_spec
from orchestrator.teachers import teacher_job
from tests.conftest import small_spec
from trainers import enhance, export
from trainers.data.frames import sample_frames
from trainers.data.manifests import read_csv
from trainers.enhance import curves, zero_dce, zero_dce_pp, zero_reference
from trainers.enhance.curves import CurveNet, DarkeningWeights
from trainers.enhance.zero_dce import DCENet
from trainers.enhance.zero_dce_pp import DCEPPNet


def dark_batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 3, 4, 16, 16, generator=g) * 0.08).round(decimals=3)


def constant_curves(net: CurveNet, r: float) -> CurveNet:
    """All weights zero but the last bias, so that every curve map is r everywhere."""
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        last_bias = [p for n, p in net.named_parameters() if n.startswith("e_conv7.")][-1]
        last_bias.fill_(math.atanh(r))
    return net.eval()


def authors_update(x: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
    """The authors' code, written out: x = x + r * (x^2 - x), once per map."""
    for r in maps:
        x = x + r * (torch.pow(x, 2) - x)
    return x


def ramp() -> torch.Tensor:
    return torch.linspace(0, 1, 3 * 8 * 8).view(1, 3, 8, 8)


def frames_of(root: Path) -> torch.Tensor:
    return sample_frames([p for p, _ in read_csv(root, root / "train.csv").items], 2, 32)


def test_gic_matches_the_gamma_formula_within_one_level() -> None:
    levels = torch.arange(256, dtype=torch.float32)
    video = (levels / 255).view(1, 1, 1, 16, 16).expand(1, 3, 1, 16, 16)
    out = enhance.build("gic", gamma=2.2)(video) * 255
    expected = 255 * (levels / 255) ** (1 / 2.2)
    assert (out[0, 0, 0].flatten() - expected).abs().max() <= 1


def test_he_gives_opencvs_equalize_hist_levels() -> None:
    # 64 grey pixels; the output levels were computed once with the classic formula
    # lut[v] = round((cdf[v] - cdf_min) * 255 / (N - cdf_min)) (and match cv2.equalizeHist).
    counts = {5: 20, 10: 15, 20: 10, 40: 8, 80: 6, 160: 4, 250: 1}
    expected = {5: 0, 10: 87, 20: 145, 40: 191, 80: 226, 160: 249, 250: 255}
    grey = torch.tensor([v for v, n in counts.items() for _ in range(n)]).view(8, 8)
    video = (grey / 255).view(1, 1, 1, 8, 8).expand(1, 3, 1, 8, 8).contiguous()
    out = (enhance.build("he")(video)[0, :, 0] * 255).round().long()
    assert all(torch.equal(out[c][grey == v], torch.full((n,), expected[v]))
               for c in range(3) for v, n in counts.items())  # fmt: skip


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


@pytest.mark.parametrize("name", ["identity", "gic", "he", "gic_he", "zero_dce", "zero_dce_pp"])
def test_every_method_keeps_shape_range_and_device(name: str, tmp_path: Path) -> None:
    net = DCEPPNet() if name == "zero_dce_pp" else DCENet()
    curves.save(constant_curves(net, -0.3), tmp_path / "w.pt")  # r < 0 brightens
    module = enhance.build(name, weights=tmp_path / "w.pt")
    video = dark_batch()
    out = module(video)
    assert out.shape == video.shape and out.device == video.device
    assert out.dtype == video.dtype and out.min() >= 0 and out.max() <= 1
    if name != "identity":
        assert out.mean() > video.mean()  # all of them brighten dark video


def test_unknown_enhancement_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown enhancement 'clahe'.*zero_dce_pp"):
        enhance.build("clahe")


@pytest.mark.parametrize("name", ["zero_dce", "zero_dce_pp"])
def test_curve_methods_without_weights_say_how_to_get_them(name: str) -> None:
    with pytest.raises(ValueError, match=f"train-zero-dce --variant {name}"):
        enhance.build(name)


def test_zero_dce_has_the_papers_size() -> None:
    assert sum(p.numel() for p in DCENet().parameters()) == 79416


def test_zero_dce_applies_the_authors_update_eight_times() -> None:
    net = constant_curves(DCENet(), -0.5)
    x = ramp()
    out, maps = net(x)
    assert torch.allclose(maps, torch.full_like(maps, -0.5), atol=1e-6)
    assert torch.allclose(out, authors_update(x, [torch.tensor(-0.5)] * 8), atol=1e-6)
    assert out.mean() > x.mean()


def test_the_authors_legacy_format_file_loads(tmp_path: Path) -> None:
    # The authors' Epoch99.pth: PyTorch's legacy (non-zip) format; some forks saved it from
    # a DataParallel model, whose keys start with "module.".
    net = constant_curves(DCENet(), -0.5)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path / "Epoch99.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] != b"PK"  # not a zip archive
    video = dark_batch()
    expected = curves.CurveEnhancer(net)(video)
    assert torch.equal(enhance.build("zero_dce", weights=path)(video), expected)


def test_weights_of_the_old_sign_are_refused_with_the_way_out(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    curves.save(constant_curves(DCENet(), 0.5), old)  # brightened under x + a*x*(1 - x)
    with pytest.raises(
        DarkeningWeights, match=r"old.pt: these weights darken.*dlkdd enhance convert-zero-dce"
    ):
        enhance.build("zero_dce", weights=old)


def test_convert_gives_the_old_images_under_the_authors_update(tmp_path: Path) -> None:
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    curves.save(constant_curves(DCENet(), 0.5), old)
    result = CliRunner().invoke(app, ["enhance", "convert-zero-dce", str(old), str(new)])
    assert result.exit_code == 0, result.output
    x = ramp()
    before = x
    for _ in range(8):  # dlkdd's old update with a = 0.5
        before = before + 0.5 * before * (1 - before)
    assert torch.allclose(zero_dce.load(new)(x)[0], before, atol=1e-6)
    again = CliRunner().invoke(app, ["enhance", "convert-zero-dce", str(new), str(new)])
    assert again.exit_code == 2 and "nothing to convert" in again.output


def test_weights_of_the_other_network_are_named(tmp_path: Path) -> None:
    curves.save(constant_curves(DCENet(), -0.5), tmp_path / "zd.pt")
    with pytest.raises(ValueError, match="not DCEPPNet weights"):
        enhance.build("zero_dce_pp", weights=tmp_path / "zd.pt")


def test_zero_dce_pp_has_the_authors_parameters() -> None:
    params = dict(DCEPPNet().named_parameters())
    assert sum(p.numel() for p in params.values()) == 10561
    assert list(params)[:4] == [
        "e_conv1.depth_conv.weight",
        "e_conv1.depth_conv.bias",
        "e_conv1.point_conv.weight",
        "e_conv1.point_conv.bias",
    ]
    assert {n.split(".")[0] for n in params} == {f"e_conv{k}" for k in range(1, 8)}
    assert params["e_conv7.point_conv.weight"].shape == (3, 64, 1, 1)


def input_dependent_curves(net: DCEPPNet) -> DCEPPNet:
    """r = tanh(-red channel of the (downscaled) frame), the same in all 3 channels: e_conv1
    passes red on, e_conv7 takes it from the skip (x1) and negates it; the rest is zero."""
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.e_conv1.depth_conv.weight[:, 0, 1, 1] = 1
        net.e_conv1.point_conv.weight[0, 0] = 1
        net.e_conv7.depth_conv.weight[0, 0, 1, 1] = 1
        net.e_conv7.point_conv.weight[:, 0] = -1
    return net.eval()


@pytest.mark.parametrize("scale", [1, 2])
def test_zero_dce_pp_applies_one_map_eight_times_as_the_authors(scale: int) -> None:
    x = ramp()
    net = input_dependent_curves(DCEPPNet(scale))
    # The authors' forward: bilinear downscale, tanh maps, UpsamplingBilinear2d back.
    small = x if scale == 1 else F.interpolate(x, scale_factor=1 / scale, mode="bilinear")
    r = torch.tanh(-small[:, :1]).expand(-1, 3, -1, -1)
    r = r if scale == 1 else nn.UpsamplingBilinear2d(scale_factor=scale)(r)
    out, maps = net(x)
    assert torch.allclose(maps, r, atol=1e-6)
    assert torch.allclose(out, authors_update(x, [r] * 8), atol=1e-6)
    const = constant_curves(DCEPPNet(scale), -0.5)
    assert torch.allclose(const(x)[0], authors_update(x, [torch.tensor(-0.5)] * 8), atol=1e-6)


def test_zero_dce_pp_keeps_odd_frame_sizes(tmp_path: Path) -> None:
    curves.save(constant_curves(DCEPPNet(), -0.5), tmp_path / "w.pt")
    video = torch.rand(1, 3, 2, 17, 15) * 0.1
    assert enhance.build("zero_dce_pp", weights=tmp_path / "w.pt", scale=4)(video).shape == (
        1, 3, 2, 17, 15
    )  # fmt: skip


@pytest.mark.parametrize("make_net", [DCENet, DCEPPNet], ids=["zero_dce", "zero_dce_pp"])
def test_training_lowers_loss_and_brightens_towards_target(make_net, synth_root: Path) -> None:
    frames = frames_of(synth_root)
    net, history = zero_reference.train(make_net, frames, steps=120, batch_size=8, lr=1e-3)
    assert sum(history[-10:]) / 10 < 0.5 * sum(history[:10]) / 10
    with torch.no_grad():
        before, after = frames.mean(), net(frames)[0].mean()
    target = zero_reference.EXPOSURE_TARGET
    assert before < 0.06
    assert abs(after - target) < abs(before - target) / 2


def test_zero_dce_pp_weights_serve_any_scale(tmp_path: Path) -> None:
    net = input_dependent_curves(DCEPPNet())
    curves.save(net, tmp_path / "w.pt")
    video = dark_batch()
    assert torch.equal(
        curves.CurveEnhancer(net)(video),
        enhance.build("zero_dce_pp", weights=tmp_path / "w.pt")(video),
    )
    assert zero_dce_pp.load(tmp_path / "w.pt", scale=2).scale == 2


def test_train_zero_dce_pp_command_writes_loadable_weights(
    synth_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "zdpp.pt"
    args = ["enhance", "train-zero-dce", "--variant", "zero_dce_pp", "--manifest",
            str(synth_root / "val.csv"), "--out", str(out), "--steps", "20"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    enhance.build("zero_dce_pp", weights=out, scale=2)


def test_a_teachers_export_carries_its_zero_dce_pp_weights_and_scale(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    curves.save(input_dependent_curves(DCEPPNet()), weights)
    meta = {"input_enhancement": {"name": "zero_dce_pp", "gamma": 2.0, "scale": 2,
                                  "curve": export.CURVE_CONVENTION}}  # fmt: skip
    out = export.export(tmp_path / "export", {}, meta, weights)
    weights.unlink()  # the export is self-contained
    enhancer = export.input_enhancer(out, export.read_meta(out))
    video = dark_batch()
    expected = curves.CurveEnhancer(input_dependent_curves(DCEPPNet(scale=2)))(video)
    assert torch.equal(enhancer(video), expected)


def test_a_teacher_exported_with_the_old_curve_sign_is_refused(tmp_path: Path) -> None:
    """Its weights file now brightens, but the teacher learned on darkened video."""
    weights = tmp_path / "w.pt"
    curves.save(input_dependent_curves(DCEPPNet()), weights)
    meta = {"input_enhancement": {"name": "zero_dce", "gamma": 2.0}}  # no "curve" mark
    out = export.export(tmp_path / "export", {}, meta, weights)
    with pytest.raises(ValueError, match="before dlkdd used the Zero-DCE authors' curve sign"):
        export.input_enhancer(out, export.read_meta(out))


def test_a_sweeps_zero_dce_pp_teacher_gets_weights_trained_once(
    ray_session, synth_root: Path, tmp_path: Path
) -> None:
    sweep = {"enhancements": ["zero_dce_pp"], "zero_dce_steps": 20,
             "temperature": {"type": "choice", "values": [4]},
             "alpha": {"type": "choice", "values": [0.5]}}  # fmt: skip
    spec = parse_spec(small_spec(synth_root, tmp_path, sweep=sweep))
    job = teacher_job(spec, "zero_dce_pp")
    location = job.enhancement.zero_dce_pp_weights
    assert location.startswith(str(tmp_path / "runs" / "zero_dce_pp"))
    assert job.enhancement.zero_dce_weights is None
    enhance.build("zero_dce_pp", weights=location)  # brightens: accepted
    stamp = Path(location).stat().st_mtime_ns
    assert teacher_job(spec, "zero_dce_pp") == job
    assert Path(location).stat().st_mtime_ns == stamp  # reused, not retrained
