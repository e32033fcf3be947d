"""Frames/s of each enhancement method on a batch of video, on CPU and on CUDA if present.

python bench/enhance.py [--batch 8] [--frames 16] [--size 112]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from trainers import enhance
from trainers.enhance import zero_dce

from timing import per_second


def frames_per_second(module: torch.nn.Module, video: torch.Tensor, repeat: int) -> float:
    b, _, t = video.shape[:3]
    with torch.no_grad():
        return per_second(lambda _: module(video), repeat, b * t, video.device, warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "zd.pt"
        zero_dce.save(zero_dce.DCENet(), weights)
        print(f"batch {args.batch}x3x{args.frames}x{args.size}x{args.size}, "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip
        print(f"{'method':10s} " + " ".join(f"{d + ' frames/s':>16s}" for d in devices))
        for name in enhance.NAMES:
            module = enhance.build(name, weights=weights)
            row = []
            for device in devices:
                video = torch.rand(args.batch, 3, args.frames, args.size, args.size, device=device)
                row.append(frames_per_second(module.to(device), video * 0.05, args.repeat))
            print(f"{name:10s} " + " ".join(f"{v:16.0f}" for v in row))


if __name__ == "__main__":
    main()
