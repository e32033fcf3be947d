"""Frames/s of each enhancement method on a batch of video, on CPU and on CUDA if present;
Zero-DCE++ at each of --scales, side by side with Zero-DCE.

python bench/enhance.py [--batch 8] [--frames 16] [--size 112] [--scales 1 4]
"""

from __future__ import annotations

import argparse

import torch

from trainers import enhance
from trainers.enhance.curves import CurveEnhancer
from trainers.enhance.zero_dce import DCENet
from trainers.enhance.zero_dce_pp import DCEPPNet

from timing import per_second


def frames_per_second(module: torch.nn.Module, video: torch.Tensor, repeat: int) -> float:
    b, _, t = video.shape[:3]
    with torch.no_grad():
        return per_second(lambda _: module(video), repeat, b * t, video.device, warmup=1)


def methods(scales: list[int]) -> dict[str, torch.nn.Module]:
    """Every method; the curve networks with untrained weights (the cost does not depend on
    their values, and the brightness check of weight files is not what is measured)."""
    modules = {n: enhance.build(n) for n in enhance.NAMES if n not in enhance.CURVE_NETS}
    modules["zero_dce"] = CurveEnhancer(DCENet())
    for s in scales:
        modules[f"zero_dce_pp s{s}"] = CurveEnhancer(DCEPPNet(scale=s))
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"batch {args.batch}x3x{args.frames}x{args.size}x{args.size}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'method':16s} " + " ".join(f"{d + ' frames/s':>16s}" for d in devices))
    for name, module in methods(args.scales).items():
        row = []
        for device in devices:
            video = torch.rand(args.batch, 3, args.frames, args.size, args.size, device=device)
            row.append(frames_per_second(module.to(device), video * 0.05, args.repeat))
        print(f"{name:16s} " + " ".join(f"{v:16.0f}" for v in row))


if __name__ == "__main__":
    main()
