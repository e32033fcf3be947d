"""The one worker loop for teacher and student: runs in each Ray Train worker.

Reads top to bottom: build data, model (and frozen teacher), DeepSpeed engine; resume from
the last checkpoint if any; per epoch train, validate, checkpoint, report; finally test the
best weights multi-view and export them. Scale and placement come from outside.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch._utils import _unflatten_dense_tensors
from torch.utils.data import DataLoader, DistributedSampler, Subset

from trainers import enhance, export, models, schedule, soft_targets, stopping, storage
from trainers.config import CURVE_WEIGHTS, JobConfig
from trainers.data.clips import ClipDataset, KeyedClips
from trainers.data.epoch_sampler import EpochSampler
from trainers.data.manifests import load_splits
from trainers.distill import kd_loss
from trainers.metrics import Accuracy
from trainers.preprocess import model_input, to_unit

STATE_FILE, BEST_FILE, EXPORT_DIR = "state.json", "best_model.pt", "export"
HISTORY_FILE = "history.json"  # every epoch's metrics, kept across resumes
PHASES_FILE = "phases.json"  # rank 0's Stopwatch: where the job's time went
DS_TAG = "deepspeed"  # not "latest": DeepSpeed writes a file of that name beside the tag


def train_func(config: dict[str, Any]) -> None:
    watch = Stopwatch()
    job = JobConfig.model_validate(config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(job.seed)

    splits = load_splits(job.dataset)
    classes = splits["train"].classes
    train_set = ClipDataset(splits["train"].items, job.clip, "train", job.seed)
    sampler = EpochSampler(DistributedSampler(train_set, world, rank, shuffle=True, seed=job.seed))
    train_loader = _loader(KeyedClips(train_set), job, sampler=sampler, drop_last=True)
    val_loader = _loader(
        _shard(ClipDataset(splits["val"].items, job.clip, "val"), rank, world), job
    )
    watch.lap("data")

    bf16 = _use_bf16(job, device)
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = models.build(job.model.arch, len(classes), job.model.pretrained).to(device)
    if job.model.channels_last:
        model = models.channels_last_inputs(model)
    enhancer = _enhancer(job, device)  # a teacher's; a student sees original video
    teacher = soft_targets.teacher_for(job, train_set, device, dtype)

    steps_per_epoch = max(len(train_loader) // job.optim.grad_accum, 1)
    opt = schedule.optimiser(model, job.optim)
    sched = schedule.warmup_cosine(
        opt, round(job.optim.warmup_epochs * steps_per_epoch), job.optim.epochs * steps_per_epoch
    )
    engine, _, _, _ = imported_deepspeed().initialize(
        model=model,
        optimizer=opt,
        lr_scheduler=sched,
        config=schedule.deepspeed_config(job.optim, bf16, job.deepspeed),
    )
    forward = torch.compile(engine) if job.model.compile else engine

    state = {"epoch": 0, "best_val_top1": -1.0, "resumed_from_epoch": 0, "history": []}
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            engine.load_checkpoint(d, tag=DS_TAG, load_module_strict=True)
            state = json.loads((Path(d) / STATE_FILE).read_text())
            best_state = torch.load(Path(d) / BEST_FILE, map_location="cpu", weights_only=True)
        state["resumed_from_epoch"] = state["epoch"]
        _log(rank, f"[{job.role}] resumed after epoch {state['epoch']}")
    watch.lap("engine")

    for epoch in range(state["epoch"], job.optim.epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)  # shuffle and augmentation: the loader's workers get it too
        engine.train()
        loss_sum = torch.zeros(3, dtype=torch.float64, device=device)  # loss, clips, bad
        for clips, labels, skipped, keys in train_loader:
            loss = train_step(engine, forward, clips, labels, job, dtype, enhancer, teacher, keys)
            loss_sum += torch.tensor(
                [loss.item() * len(labels), len(labels), int(skipped.sum())], device=device
            ).to(loss_sum)
        _all_reduce(loss_sum)
        _check_bad_share(loss_sum, job.dataset.max_bad_fraction)

        metrics = _evaluate(engine, val_loader, enhancer, job, len(classes), "val", dtype)
        watch.lap("epochs")
        elapsed = time.perf_counter() - started
        metrics.update(
            epoch=epoch + 1,
            train_loss=float(loss_sum[0] / loss_sum[1].clamp(min=1)),
            bad_clips=int(loss_sum[2]),
            lr=sched.get_last_lr()[0],
            epoch_seconds=elapsed,
            train_clips_per_s=float(loss_sum[1]) / elapsed,
        )
        state["epoch"] = epoch + 1
        state["history"].append(metrics)
        if metrics["val_top1"] > state["best_val_top1"]:
            state["best_val_top1"] = metrics["val_top1"]
            state["best_val"] = {k: v for k, v in metrics.items() if k.startswith("val_")}
            best_state = fp32_state(engine)
        _log(rank, f"[{job.role}] epoch {epoch + 1}/{job.optim.epochs} " + _fmt(metrics))
        _report(engine, metrics, state, best_state, rank)
        watch.lap("checkpoints")
        if job.fail_at_epoch is not None and epoch + 1 == job.fail_at_epoch:
            raise RuntimeError(f"injected failure after epoch {epoch + 1} (fail_at_epoch)")
        if job.stop_key and _agree(rank == 0 and stopping.requested(job.stop_key), device):
            _log(rank, f"[{job.role}] stopped early by the scheduler after epoch {epoch + 1}")
            break

    _finish(job, engine, best_state, enhancer, classes, splits, rank, world, dtype, state,
            watch)  # fmt: skip


def imported_deepspeed():
    """DeepSpeed, imported here in the worker (imported, it prints its accelerator banner),
    with the venv's tools leading PATH, and without MLflow: its autotuner, which dlkdd does
    not run, imports mlflow when it is installed, 0.8 s of every worker's start
    (bench/job_overhead.py). A `None` in sys.modules makes that import fail as if mlflow
    were absent; it is removed after, so that the worker may import mlflow as usual."""
    _venv_tools_first()
    hidden = "mlflow" not in sys.modules
    if hidden:
        sys.modules["mlflow"] = None  # type: ignore[assignment]
    try:
        import deepspeed
    finally:
        if hidden:
            del sys.modules["mlflow"]
    return deepspeed


def _venv_tools_first() -> None:
    """The venv's bin leads PATH, so that the CPU comm op DeepSpeed builds on first use is
    built by the ninja the venv pins. A system ninja of another version hashes the build
    differently, and each switch between the two (the tests' PATH and a plain `dlkdd`'s)
    rebuilt it: 27 s of a job's engine phase here."""
    tools, path = str(Path(sys.executable).parent), os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != tools:
        os.environ["PATH"] = os.pathsep.join([tools, path]) if path else tools


class Stopwatch:
    """Seconds per phase of a job in this worker (data, engine, epochs, checkpoints, test,
    export), reported with the final metrics: where a job's fixed time goes, in MLflow and
    in bench/job_overhead.py (which adds the worker group's start from `started_at`)."""

    def __init__(self) -> None:
        self.started_at = self.last = time.time()
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """Counts the time since the previous lap towards `phase`."""
        now = time.time()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now

    def metrics(self) -> dict[str, float]:
        return {"worker_started_at": self.started_at,
                **{f"job_{k}_seconds": v for k, v in self.seconds.items()}}  # fmt: skip


def train_step(
    engine,
    forward,
    clips: torch.Tensor,
    labels: torch.Tensor,
    job: JobConfig,
    dtype: torch.dtype,
    enhancer: torch.nn.Module | None = None,
    teacher: soft_targets.Teacher | None = None,
    keys: torch.Tensor | None = None,
) -> torch.Tensor:
    """One micro-step on a uint8 batch: to the device, enhance, normalise, forward, the
    teacher's logits for the same clips (`keys`: their (epoch, index)), KD loss, backward,
    step. Public so that bench/train_step.py times exactly this."""
    unit, labels = to_unit(clips, engine.device), labels.to(engine.device)
    teacher_logits = teacher(unit, keys) if teacher is not None else None
    x = model_input(unit, enhancer, job.clip.mean, job.clip.std, dtype)
    alpha = job.distill.alpha if job.role == "student" else 0.0
    loss = kd_loss(forward(x), teacher_logits, labels, job.distill.temperature, alpha)
    engine.backward(loss)
    engine.step()
    return loss.detach()


def fp32_state(engine) -> dict[str, torch.Tensor]:
    """The model's state on CPU with fp32 weights: in bf16 training each parameter's fp32
    master copy from DeepSpeed (a collective under ZeRO: every rank calls this), not the
    bf16 working copy; integer buffers stay integers."""
    masters = _fp32_masters(engine)
    state = {}
    for key, value in engine.module.state_dict().items():
        value = masters.get(key, value)
        state[key] = (value.float() if value.is_floating_point() else value).detach().cpu().clone()
    return state


def _fp32_masters(engine) -> dict[str, torch.Tensor]:
    """Parameter name -> DeepSpeed's fp32 master copy, where it keeps one. ZeRO 1-2 and the
    BF16 optimiser answer the public `safe_get_full_fp32_param`; without ZeRO, bf16 runs
    DeepSpeed's FP16 optimiser wrapper (unfused for torch's optimisers: per-parameter fp32
    groups; fused: flat ones), whose internals are read here; the bf16 cases of
    tests/test_optimisers.py fail if they change."""
    from deepspeed.utils import safe_get_full_fp32_param  # a worker's, as above

    params = dict(engine.module.named_parameters())
    masters = {n: m for n, p in params.items() if (m := safe_get_full_fp32_param(p)) is not None}
    opt, names = engine.optimizer, {id(p): n for n, p in params.items()}
    if masters or not hasattr(opt, "fp16_groups"):
        return masters
    for i, group in enumerate(opt.fp16_groups):
        copies = (
            opt.fp32_groups[i]
            if hasattr(opt, "fp32_groups")
            else _unflatten_dense_tensors(opt.fp32_groups_flat[i], group)
        )
        masters.update({names[id(p)]: m for p, m in zip(group, copies, strict=True)})
    return masters


def _finish(
    job, engine, best_state, enhancer, classes, splits, rank, world, dtype, state, watch
) -> None:
    """Multi-view test of the best weights, export, and the final report (with checkpoint)."""
    best_state = _rank0s(best_state, engine.device)
    engine.module.load_state_dict(best_state)
    test_set = _shard(ClipDataset(splits["test"].items, job.clip, "test"), rank, world)
    metrics = _evaluate(engine, _loader(test_set, job), enhancer, job, len(classes), "test", dtype)
    watch.lap("test")
    metrics.update(
        **state["best_val"],  # validation of the exported (best) weights
        epoch=state["epoch"],
        best_val_top1=state["best_val_top1"],
        resumed_from_epoch=state["resumed_from_epoch"],
        job_done=1,  # not Tune's "done": that stops the trial before fit() cleans up
    )
    _log(rank, f"[{job.role}] test " + _fmt(metrics))
    with tempfile.TemporaryDirectory() as d:
        if rank == 0:
            meta = _meta(job, classes, metrics)
            export.export(Path(d) / EXPORT_DIR, best_state, meta, _curve_weights_file(job))
            (Path(d) / HISTORY_FILE).write_text(json.dumps(state["history"]))
            watch.lap("export")
        if job.soft_targets_for:  # a sweep's teacher: its students' stores, workers being up
            exported = partial(export.network, job.model.arch, len(classes), best_state)
            folder = Path(d) / soft_targets.OFFERED_DIR
            items = splits["train"].items
            soft_targets.write_requested(
                job, items, exported, enhancer, rank, world, engine.device, folder
            )
            watch.lap("soft_targets")
        if rank == 0:
            (Path(d) / PHASES_FILE).write_text(json.dumps(watch.metrics()))
        metrics.update(watch.metrics())
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def _rank0s(state: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Rank 0's `state` on every rank, in place. Rank 0 alone exports its best weights, and
    BatchNorm's running statistics differ between ranks (DeepSpeed, unlike DDP, does not
    broadcast buffers; each rank tracks its own batches), so the multi-view test and the
    students' soft targets, computed by every rank, are of exactly the exported model."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return state
    for value in state.values():
        on_device = value.to(device)  # NCCL broadcasts device tensors only
        dist.broadcast(on_device, src=0)
        value.copy_(on_device)
    return state


def _meta(job: JobConfig, classes: list[str], metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "role": job.role,
        "arch": job.model.arch,
        "classes": classes,
        "clip": job.clip.model_dump(mode="json"),
        "input_enhancement": {
            **job.enhancement.model_dump(mode="json", exclude=set(CURVE_WEIGHTS.values())),
            "curve": export.CURVE_CONVENTION,
        }
        if job.role == "teacher"
        else None,
        "distill": job.distill.model_dump() if job.role == "student" else None,
        "metrics": metrics,
    }


def _curve_weights_file(job: JobConfig) -> Path | None:
    """A teacher's Zero-DCE(++) weights as a local file (downloaded if they live in storage)."""
    weights = job.enhancement.weights()
    if job.role != "teacher" or weights is None:
        return None
    return storage.local_file(weights)


def _enhancer(job: JobConfig, device: torch.device) -> torch.nn.Module | None:
    """A teacher learns on enhanced video, a student on original video (its teacher's
    enhancement is the teacher's business: `soft_targets`)."""
    if job.role != "teacher":
        return None
    e = job.enhancement
    return enhance.build(e.name, e.gamma, _curve_weights_file(job), e.scale).to(device)


@torch.no_grad()
def _evaluate(engine, loader, enhancer, job, num_classes, prefix, dtype) -> dict[str, float]:
    """Accuracy over this rank's shard, summed over ranks; test views' logits are averaged."""
    engine.eval()
    acc = Accuracy(num_classes, engine.device)
    mean, std = job.clip.mean, job.clip.std
    for clips, labels, _ in loader:
        views = clips.shape[1] if clips.dim() == 6 else 1
        flat = clips.flatten(0, 1) if views > 1 else clips
        logits = engine(model_input(to_unit(flat, engine.device), enhancer, mean, std, dtype))
        logits = logits.float().view(len(labels), views, -1).mean(1)
        acc.update(logits, labels.to(engine.device))
    return acc.compute(prefix)


def _report(engine, metrics, state, best_state, rank) -> None:
    """Every rank saves its DeepSpeed shard (else save_checkpoint hangs), then reports."""
    with tempfile.TemporaryDirectory() as d:
        engine.save_checkpoint(d, tag=DS_TAG)
        if rank == 0:
            (Path(d) / STATE_FILE).write_text(json.dumps(state))
            torch.save(best_state, Path(d) / BEST_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def _loader(dataset, job: JobConfig, sampler=None, drop_last: bool = False) -> DataLoader:
    workers = job.dataset.num_workers
    return DataLoader(
        dataset,
        batch_size=job.optim.batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
    )


def _shard(dataset: ClipDataset, rank: int, world: int) -> Subset:
    """Every evaluation clip exactly once across ranks (DistributedSampler would pad)."""
    return Subset(dataset, range(rank, len(dataset), world))


def _use_bf16(job: JobConfig, device: torch.device) -> bool:
    if job.optim.precision == "auto":
        return device.type == "cuda"
    return job.optim.precision == "bf16"


def _all_reduce(t: torch.Tensor) -> None:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)


def _agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every rank, so all ranks leave the loop together."""
    t = torch.tensor([float(flag)], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(t, src=0)
    return bool(t.item())


def _check_bad_share(sums: torch.Tensor, limit: float) -> None:
    bad, seen = float(sums[2]), float(sums[1])
    if bad and bad / (bad + seen) > limit:
        raise RuntimeError(
            f"{int(bad)} bad videos among {int(bad + seen)} samples this epoch, more than "
            f"dataset.max_bad_fraction={limit}; run `dlkdd data check` on the dataset"
        )


def _fmt(metrics: dict[str, float]) -> str:
    keys = ("train_loss", "val_top1", "val_mean_class", "test_top1", "test_mean_class",
            "train_clips_per_s")  # fmt: skip
    return " ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)


def _log(rank: int, message: str) -> None:
    if rank == 0:
        print(message, flush=True)
