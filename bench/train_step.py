"""Training-step throughput: the full worker step vs the bare model, and the online
teacher's overhead, measured side by side in one run (one process, world size 1).

* full step: DataLoader (decode, sample, crop) -> device -> enhance -> normalise ->
  forward/backward -> DeepSpeed step, i.e. trainers.loop.train_step fed by the real loader;
* bare: forward/backward of the same model on a batch already on the device;
* the student's step with its soft targets vs plain CE, on in-memory uint8 batches through
  train_step, so the difference is the teacher alone: `online` runs the frozen teacher
  (enhancement + forward) on every batch, `store` reads its logits by (epoch, index), as
  students of a sweep do; for teachers on gic, zero_dce and zero_dce_pp input.

On CUDA it also sweeps bf16 x channels_last_3d x torch.compile and reports TFLOP/s
(FLOPs counted once with torch.utils.flop_counter on one forward/backward).

    python bench/train_step.py                        # CPU: tiny, 8x32x32
    python bench/train_step.py --arch r2plus1d_18 --frames 16 --crop 112   # GPU figures
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
from pathlib import Path

import deepspeed
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from trainers import enhance, models, schedule
from trainers.config import ClipConfig, DatasetConfig, JobConfig, OptimConfig
from trainers.data.clips import ClipDataset
from trainers.data.manifests import load_splits
from trainers.data.synth import SynthConfig, synthesize
from trainers.enhance.curves import CurveEnhancer
from trainers.loop import train_step
from trainers.preprocess import normalise
from trainers.soft_targets import OnlineTeacher, StoredTeacher

from timing import per_second

NUM_CLASSES = 4


def init_single_process(device: torch.device) -> None:
    """DeepSpeed needs a process group even alone: world size 1 over gloo/NCCL."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", RANK="0",
                      WORLD_SIZE="1", LOCAL_RANK="0")  # fmt: skip
    deepspeed.init_distributed("nccl" if device.type == "cuda" else "gloo", verbose=False)


def engine_for(job: JobConfig, device: torch.device, bf16: bool, channels_last: bool):
    model = models.build(job.model.arch, NUM_CLASSES).to(device)
    if channels_last:
        model = models.channels_last_inputs(model)
    opt = schedule.optimiser(model, job.optim)
    engine, *_ = deepspeed.initialize(
        model=model, optimizer=opt, config=schedule.deepspeed_config(job.optim, bf16, job.deepspeed)
    )
    return engine


def full_step(job, engine, forward, loader, enhancer, dtype, batches: int) -> float:
    """The real loader feeding train_step; the loader is cycled so it never runs dry."""
    stream = itertools.cycle(loader)

    def step(_: int) -> None:
        clips, labels, _skipped = next(stream)
        train_step(engine, forward, clips, labels, job, dtype, enhancer)

    return per_second(step, batches, job.optim.batch_size, engine.device)


def bare_step(model, x: torch.Tensor, labels: torch.Tensor, batches: int) -> float:
    def step(_: int) -> None:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x).float(), labels).backward()

    return per_second(step, batches, len(x), x.device)


def memory_step(job, engine, clips, labels, dtype, teacher=None):
    """train_step on one uint8 batch held in memory (no loader), on original video: plain
    CE when job's alpha is 0 (a teacher job), KD with `teacher`'s soft targets otherwise."""
    keys = torch.stack([torch.zeros(len(labels), dtype=torch.long), torch.arange(len(labels))], 1)
    return lambda _: train_step(engine, engine, clips, labels, job, dtype, None, teacher, keys)


def teacher_enhancer(name: str) -> torch.nn.Module:
    """The teacher's input enhancement; learned ones with untrained weights (same cost)."""
    if name in enhance.CURVE_NETS:
        return CurveEnhancer(enhance.CURVE_NETS[name]())
    return enhance.build(name)


def soft_target_ratios(args, student_job, teacher_job, clips, labels, device) -> None:
    """store/CE and online/CE step ratios, per teacher input, measured side by side: the
    three steps take turns for `--rounds` rounds and each keeps its median rate, so drift
    of this machine's speed hits all three alike."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    engine = engine_for(student_job, device, dtype == torch.bfloat16, False)
    model = models.build(args.arch, NUM_CLASSES).to(device, dtype).eval().requires_grad_(False)
    for name in args.teachers:
        online = OnlineTeacher(model, teacher_enhancer(name).to(device), student_job.clip, dtype)
        unit = clips.to(device).float() / 255
        stored = StoredTeacher(online(unit, None).unsqueeze(0))  # epoch 0, these clips
        steps = {
            "CE": memory_step(teacher_job, engine, clips, labels, dtype),
            "online": memory_step(student_job, engine, clips, labels, dtype, online),
            "store": memory_step(student_job, engine, clips, labels, dtype, stored),
        }
        rounds = {kind: [] for kind in steps}
        for _ in range(args.rounds):
            for kind, step in steps.items():
                rounds[kind].append(per_second(step, args.batches, args.batch, device))
        rate = {kind: statistics.median(r) for kind, r in rounds.items()}
        shown = ", ".join(f"{kind} {r:.1f}" for kind, r in rate.items())
        print(f"student step ({name} teacher), in-memory batches, clips/s: {shown}")
        for kind in ("store", "online"):
            print(f"{kind}/CE step ratio ({name}): {rate['CE'] / rate[kind]:.3f}")


def step_flops(model, x: torch.Tensor, labels: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x).float(), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument("--enhancement", default="gic")
    parser.add_argument("--rounds", type=int, default=5, help="Turns of CE/online/store.")
    parser.add_argument("--teachers", nargs="+", default=["gic", "zero_dce", "zero_dce_pp"],
                        help="Teacher inputs of the soft-target comparison.")  # fmt: skip
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    init_single_process(device)
    size = max(64, (args.crop * 8 // 7 + 15) // 16 * 16)  # a little larger than the crop

    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), SynthConfig(num_classes=NUM_CLASSES, train_per_class=8,
                                          val_per_class=1, test_per_class=1,
                                          frames=args.frames * 2 + 8, size=size))  # fmt: skip
        dataset = DatasetConfig(format="csv", root=Path(tmp), num_workers=args.loader_workers)
        clip = ClipConfig(num_frames=args.frames, stride=2, crop_size=args.crop)
        optim = OptimConfig(batch_size=args.batch, epochs=1, warmup_epochs=0)
        teacher_job = JobConfig(role="teacher", dataset=dataset, clip=clip, optim=optim,
                                model={"arch": args.arch},
                                enhancement={"name": args.enhancement})  # fmt: skip
        student_job = teacher_job.model_copy(
            update={
                "role": "student",
                "distill": teacher_job.distill.model_copy(
                    update={"alpha": 0.5, "temperature": 4.0}
                ),
            }  # fmt: skip
        )
        items = load_splits(dataset)["train"].items
        loader = DataLoader(ClipDataset(items, clip, "train"), batch_size=args.batch,
                            shuffle=True, num_workers=args.loader_workers, drop_last=True,
                            persistent_workers=args.loader_workers > 0,
                            pin_memory=device.type == "cuda")  # fmt: skip
        clips, labels, _ = next(iter(loader))
        enhancer = enhance.build(args.enhancement).to(device)

        print(f"{args.arch} {args.frames}x{args.crop}x{args.crop}, batch {args.batch}, "
              f"{device}, loader workers {args.loader_workers}, {torch.get_num_threads()} "
              f"torch threads")  # fmt: skip
        variants = [(False, False, False)]
        if device.type == "cuda":
            variants = list(itertools.product((True, False), (False, True), (False, True)))
        head = f"{'bf16':>5} {'ch_last':>7} {'compile':>7} {'full clips/s':>12} "
        print(head + f"{'bare clips/s':>12} {'efficiency':>10} {'TFLOP/s':>8}")
        for bf16, channels_last, compile_ in variants:
            dtype = torch.bfloat16 if bf16 else torch.float32
            engine = engine_for(teacher_job, device, bf16, channels_last)
            forward = torch.compile(engine) if compile_ else engine
            full = full_step(teacher_job, engine, forward, loader, enhancer, dtype, args.batches)
            x = normalise(enhancer(clips.to(device).float() / 255), clip.mean, clip.std, dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            y = labels.to(device)
            bare_model = torch.compile(engine.module) if compile_ else engine.module
            bare = bare_step(bare_model, x, y, args.batches)
            tflops = step_flops(engine.module, x, y) * bare / args.batch / 1e12
            print(f"{bf16!s:>5} {channels_last!s:>7} {compile_!s:>7} {full:12.1f} "
                  f"{bare:12.1f} {full / bare:10.2f} {tflops:8.2f}")  # fmt: skip

        soft_target_ratios(args, student_job, teacher_job, clips, labels, device)


if __name__ == "__main__":
    main()
