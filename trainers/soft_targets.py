"""A student's soft targets: its frozen teacher run online, or read from a store.

Training randomness is a function of (seed, epoch, index) (`ClipDataset`), so the clip a
student sees at (epoch, index) is known before it trains, whatever its world size or
shuffle. The store holds the teacher's logits for every (epoch, index) of the students'
epoch budget, computed once per teacher, data seed and clip settings: by the teacher's own
job at its end (`write_requested`), or later by a Ray Train job of its own (`compute_func`);
students then index it and neither enhance nor run the teacher. Logits are kept
in the dtype the students' teacher would run in (fp32 on CPU, bf16 on GPU), so a student
reading the store trains exactly as one running its teacher online (the idea of FKD, Shen &
Xing 2022, without its lossy crops: ours are replayed from the seed).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from trainers import export, storage
from trainers.config import ClipConfig, JobConfig
from trainers.data.clips import ClipDataset, KeyedClips
from trainers.data.manifests import load_splits
from trainers.preprocess import model_input, to_unit

OFFERED_DIR = "soft_targets"  # in a teacher's final checkpoint, beside its export


class OnlineTeacher:
    """The frozen teacher on the clip the student sees, enhanced the way it was trained."""

    def __init__(self, model: nn.Module, enhancer: nn.Module | None, clip: ClipConfig, dtype):
        self.model, self.enhancer, self.clip, self.dtype = model, enhancer, clip, dtype

    @classmethod
    def frozen(
        cls, model: nn.Module, enhancer: nn.Module | None, clip: ClipConfig, device, dtype
    ) -> OnlineTeacher:
        """A trained network (in eval mode) as the students' teacher: frozen, in their dtype."""
        return cls(
            model.to(device=device, dtype=dtype).requires_grad_(False),
            enhancer.to(device) if enhancer is not None else None,
            clip,
            dtype,
        )

    @classmethod
    def load(cls, teacher_dir: str, clip: ClipConfig, device, dtype) -> OnlineTeacher:
        """The exported teacher (a path or URI) with the enhancement its export carries."""
        local = storage.local_copy(teacher_dir)  # downloaded when it is a URI
        model, meta = export.load(local)
        return cls.frozen(model, export.input_enhancer(local, meta), clip, device, dtype)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def __call__(self, unit: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        x = model_input(unit, self.enhancer, self.clip.mean, self.clip.std, self.dtype)
        return self.model(x)


class StoredTeacher:
    """The teacher's logits for each (epoch, index), read from its store: [epochs, N, C]; or
    from a top-k store its k largest ([epochs, N, k], with their class `indices`), every
    other class at -inf (probability 0 at any temperature)."""

    def __init__(
        self, logits: torch.Tensor, indices: torch.Tensor | None = None, classes: int = 0
    ) -> None:
        self.logits, self.indices, self.classes = logits, indices, classes

    def __call__(self, unit: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        e, i = keys.to(self.logits.device).unbind(1)
        rows = self.logits[e, i]
        if self.indices is None:
            return rows
        dense = rows.new_full((len(rows), self.classes), float("-inf"))
        return dense.scatter_(1, self.indices[e, i].long(), rows)


# A store as written: every logit [epochs, N, C], or top-k {"values", "indices", "classes"}
Store = torch.Tensor | dict[str, Any]


Teacher = OnlineTeacher | StoredTeacher


def needs_store(job: JobConfig) -> bool:
    """A distilled student reading stored soft targets (not the control, not online)."""
    return job.role == "student" and job.distill.alpha > 0 and job.distill.soft_targets == "store"


def teacher_for(job: JobConfig, train_set: ClipDataset, device, dtype) -> Teacher | None:
    """A student's source of soft targets (None for the control, alpha = 0)."""
    if job.role != "student" or job.distill.alpha == 0:
        return None
    if not needs_store(job):
        return OnlineTeacher.load(job.teacher_dir, job.clip, device, dtype)
    if job.soft_target_store is None:
        raise ValueError(
            "distill.soft_targets is 'store' but the job names no soft_target_store; "
            "dlkdd's commands compute the store before the student starts"
        )
    return read(job.soft_target_store, job.optim.epochs, len(train_set), dtype, device)


def read(location: str, epochs: int, samples: int, dtype, device) -> StoredTeacher:
    """The store's logits, checked against the student that reads them."""
    held = torch.load(storage.local_file(location), map_location="cpu", weights_only=True)
    logits = held if isinstance(held, torch.Tensor) else held["values"]
    problems = []
    if logits.shape[0] < epochs:
        problems.append(f"holds {logits.shape[0]} epochs, the student trains {epochs}")
    if logits.shape[1] != samples:
        problems.append(f"holds {logits.shape[1]} training clips, the student's list {samples}")
    if logits.dtype != dtype:
        problems.append(f"holds {logits.dtype} logits, the student trains in {dtype}")
    if problems:
        raise ValueError(f"soft-target store {location}: " + "; ".join(problems))
    if isinstance(held, torch.Tensor):
        return StoredTeacher(logits[:epochs].to(device))
    indices = held["indices"][:epochs].to(device)
    return StoredTeacher(logits[:epochs].to(device), indices, held["classes"])


def compute_func(config: dict[str, Any]) -> None:
    """Ray Train worker loop: the teacher's logits for epochs [first, last) of the student
    job `config["job"]`, sharded over the workers, gathered on rank 0 and written, after the
    epochs an earlier store holds (`config["previous"]`), to `config["destination"]`."""
    job = JobConfig.model_validate(config["job"])
    first, last = config["first"], config["last"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    dtype = torch.bfloat16 if config["bf16"] else torch.float32
    teacher = OnlineTeacher.load(job.teacher_dir, job.clip, device, dtype)
    train_set = ClipDataset(load_splits(job.dataset)["train"].items, job.clip,
                            "train", job.seed)  # fmt: skip
    started = time.perf_counter()
    loading = (job.optim.batch_size, job.dataset.num_workers)
    logits = gathered_logits(teacher, train_set, (first, last), loading, config["top_k"], rank,
                             world)  # fmt: skip
    if rank == 0:
        if config["previous"]:
            earlier = torch.load(storage.local_file(config["previous"]), weights_only=True)
            logits = joined(earlier, logits, first)
        write(logits, config["destination"])
        print(f"[soft targets] epochs {first + 1}..{last}: {len(train_set)} clips each, "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    ray.train.report({"epochs": last, "clips": (last - first) * len(train_set)})


def write_requested(
    job: JobConfig,
    items: list[tuple[str, int]],
    model: Callable[[], nn.Module],
    enhancer: nn.Module | None,
    rank: int,
    world: int,
    device,
    folder: Path,
) -> None:
    """A teacher job's end (every rank): the stores `job.soft_targets_for` asks for, over
    its training list `items`, of the weights it exports (`model()`: a fresh copy, as a
    student loads the export) with its input enhancement, written by rank 0 into `folder`
    (beside the export)."""
    for request in job.soft_targets_for:
        dtype = torch.bfloat16 if request.bf16 else torch.float32
        teacher = OnlineTeacher.frozen(model(), enhancer, request.clip, device, dtype)
        train_set = ClipDataset(items, request.clip, "train", request.seed)
        loading = (request.batch_size, job.dataset.num_workers)
        epochs = (0, request.epochs)
        logits = gathered_logits(teacher, train_set, epochs, loading, request.top_k, rank, world)
        if rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(logits, folder / f"{request.key}-e{request.epochs}.pt")


def offered_by(teacher_dir: str) -> str:
    """Where a teacher job leaves the stores it was asked for: beside its export."""
    return storage.join(teacher_dir.rstrip("/").rsplit("/", 1)[0], OFFERED_DIR)


def gathered_logits(
    teacher: OnlineTeacher,
    train_set: ClipDataset,
    epochs: tuple[int, int],
    loading: tuple[int, int],
    top_k: int | None,
    rank: int,
    world: int,
) -> Store | None:
    """The teacher's logits of every training clip of epochs [first, last), this rank's
    share computed here (`loading`: the students' batch size, loader processes), all of
    them on rank 0 as [last - first, samples, classes] (with `top_k`: the k largest and
    their classes); None on the other ranks."""
    first, last = epochs
    keys = [(e, i) for e in range(first, last) for i in range(len(train_set))][rank::world]
    shard = logits_for(teacher, train_set, keys, *loading)
    classes = shard.shape[1]
    if top_k:
        values, indices = shard.topk(min(top_k, classes), dim=1)
        rows = {"values": values, "indices": indices.int()}
    else:
        rows = {"logits": shard}
    parts = [None] * world
    if dist.is_available() and dist.is_initialized():
        dist.all_gather_object(parts, (keys, rows))
    else:
        parts = [(keys, rows)]
    if rank != 0:
        return None
    held = {n: assemble([(k, r[n]) for k, r in parts], first, last, len(train_set)) for n in rows}
    return held | {"classes": classes} if top_k else held["logits"]


def joined(earlier: Store, later: Store, first: int) -> Store:
    """An earlier store's first `first` epochs followed by the later epochs."""
    if isinstance(earlier, torch.Tensor):
        return torch.cat([earlier[:first], later])
    fields = ("values", "indices")
    return later | {n: torch.cat([earlier[n][:first], later[n]]) for n in fields}


@torch.no_grad()
def logits_for(
    teacher: OnlineTeacher,
    train_set: ClipDataset,
    keys: list[tuple[int, int]],
    batch_size: int,
    num_workers: int,
) -> torch.Tensor:
    """The teacher's logits of the training clips at `keys`, in that order (on the CPU),
    batched as the students batch them, loaded by DataLoader processes."""
    loader = DataLoader(
        KeyedClips(train_set),
        batch_size=batch_size,
        sampler=keys,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
    )
    out = [teacher(to_unit(clips, teacher.device), k).cpu() for clips, _, _, k in loader]
    return (
        torch.cat(out)
        if out
        else torch.empty(0, teacher.model.fc.out_features, dtype=teacher.dtype)
    )


def assemble(parts, first: int, last: int, samples: int) -> torch.Tensor:
    """Every worker's (keys, rows) -> one [last - first, samples, ...] tensor."""
    _, shard = parts[0]
    out = torch.zeros((last - first, samples, *shard.shape[1:]), dtype=shard.dtype)
    filled = torch.zeros(last - first, samples, dtype=torch.bool)
    for keys, shard in parts:
        if keys:
            e, i = torch.tensor(keys).unbind(1)
            out[e - first, i], filled[e - first, i] = shard, True
    if not filled.all():
        raise RuntimeError("soft-target store: some (epoch, index) got no logits")
    return out


def write(logits: Store, destination: str) -> None:
    """Written whole to a new name (a store is never changed in place: nodes cache it)."""
    with tempfile.TemporaryDirectory() as d:
        torch.save(logits, Path(d) / "logits.pt")
        storage.put(Path(d) / "logits.pt", destination)
