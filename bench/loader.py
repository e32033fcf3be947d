"""Loader benchmark: ClipDataset + DataLoader vs raw decord get_batch, for decord and decord2.

The same list of (file, frame indices) is decoded both ways with the same number of
processes; the ratio loader/raw says how much the data layer adds over the decoder.
Each decoder variant runs in its own subprocess (both install as `import decord`), from
`.bench/<variant>` (installed there with pip --target on first use).

    python bench/loader.py [--videos 48] [--size 112] [--frames 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"decord": "decord==0.6.0", "decord2": "decord2==3.4.0"}


def raw_decode(job: tuple[str, list[int]]) -> int:
    import decord

    frames = decord.VideoReader(job[0], num_threads=1).get_batch(job[1]).asnumpy()
    return frames.shape[0]


def measure(
    data: Path, workers: int, clip_frames: int, stride: int, size: int, repeat: int
) -> dict:
    """Runs inside one decoder variant: clips/s raw and through the loader, train mode too."""
    import decord
    from torch.utils.data import DataLoader

    from trainers.config import ClipConfig, DatasetConfig
    from trainers.data import sampling
    from trainers.data.clips import ClipDataset
    from trainers.data.manifests import load_splits

    items = load_splits(DatasetConfig(format="csv", root=data))["train"].items
    clip = ClipConfig(num_frames=clip_frames, stride=stride, crop_size=size)
    lengths = [len(decord.VideoReader(p, num_threads=1)) for p, _ in items]
    jobs = [
        (p, sampling.centre_window(n, clip_frames, stride).tolist())
        for (p, _), n in zip(items, lengths, strict=True)
    ]

    def timed(fn) -> float:
        fn(1)  # warm-up: page cache, imports
        start = time.perf_counter()
        fn(repeat)
        return repeat * len(items) / (time.perf_counter() - start)

    def raw(epochs: int) -> None:
        if workers == 0:
            for _ in range(epochs):
                [raw_decode(j) for j in jobs]
            return
        with Pool(workers) as pool:
            for _ in range(epochs):
                pool.map(raw_decode, jobs, chunksize=4)

    def loader(mode: str):
        def run(epochs: int) -> None:
            ds = ClipDataset(items, clip, mode)
            # persistent workers, as the training loop uses them: start-up paid once
            dl = DataLoader(ds, batch_size=8, num_workers=workers, persistent_workers=workers > 0)
            for epoch in range(epochs):
                ds.set_epoch(epoch)
                for _ in dl:
                    pass

        return run

    raw_cps, val_cps, train_cps = timed(raw), timed(loader("val")), timed(loader("train"))
    return {
        "decoder": decord.__version__,
        "raw_clips_s": raw_cps,
        "loader_clips_s": val_cps,
        "ratio": val_cps / raw_cps,
        "train_aug_clips_s": train_cps,
    }


def ensure_variant(name: str) -> Path:
    target = ROOT / ".bench" / name
    if not target.is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                VARIANTS[name],
            ],
            check=True,
        )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=64, help="Frames per video file.")
    parser.add_argument("--clip-frames", type=int, default=16)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "loader_data")
    parser.add_argument("--repeat", type=int, default=4, help="Passes over the list per timing.")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        result = measure(
            args.data, int(args.inner), args.clip_frames, args.stride, args.size, args.repeat
        )
        print(json.dumps(result))
        return

    from trainers.data.synth import SynthConfig, synthesize

    if not (args.data / "train.csv").is_file():
        synthesize(
            args.data,
            SynthConfig(
                num_classes=4,
                train_per_class=args.videos // 4,
                val_per_class=1,
                test_per_class=1,
                frames=args.frames,
                size=args.size,
            ),
        )
    print(
        f"{args.videos} videos {args.size}x{args.size}x{args.frames}, clips "
        f"{args.clip_frames}x{args.size}x{args.size} stride {args.stride}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'decoder':10s} {'procs':>5s} {'raw clips/s':>12s} {'loader clips/s':>15s} "
        f"{'ratio':>6s} {'train-aug clips/s':>18s}"
    )
    for name in VARIANTS:
        env = {**os.environ, "PYTHONPATH": f"{ensure_variant(name)}:{ROOT}"}
        for workers in args.workers:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--inner",
                    str(workers),
                    "--data",
                    str(args.data),
                    "--size",
                    str(args.size),
                    "--clip-frames",
                    str(args.clip_frames),
                    "--stride",
                    str(args.stride),
                    "--repeat",
                    str(args.repeat),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{name + ' ' + r['decoder']:10s} {workers:5d} {r['raw_clips_s']:12.1f} "
                f"{r['loader_clips_s']:15.1f} {r['ratio']:6.2f} {r['train_aug_clips_s']:18.1f}"
            )


if __name__ == "__main__":
    main()
