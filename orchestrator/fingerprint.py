"""A teacher's (or the control's) identity: a hash of what determines its weights, read
from content.

Where things are mounted (dataset root, storage, a weights file's path) does not count; what
they hold does: the lists as read (paths relative to the root, labels, class names, video
sizes), every weights file's bytes, the settings, the effective global batch, the resolved
precision, the seed and dlkdd's version. So a moved dataset reuses its teachers, and an
edited list, a replaced weights file or another worker count trains new ones."""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path

from orchestrator.spec import Resources
from trainers.config import CURVE_WEIGHTS, DatasetConfig, JobConfig
from trainers.data.manifests import load_splits
from trainers.export import MODEL_FILE, curve_file_name, read_meta
from trainers.storage import filesystem, join, local_copy

# model options that change speed, not the weights learned
SPEED_ONLY = {"compile", "channels_last"}


def job_fingerprint(job: JobConfig, resources: Resources, data: str) -> str:
    """A teacher's or the control's identity (the control: a student without teacher).
    Data content (`data`: data_digest of the job's dataset, read once by a caller
    fingerprinting several jobs), weights digests, clip/model/optimisation settings, global
    batch, precision, a teacher's enhancement, seed, version. Loader processes, names and
    tracking do not change the job (clip randomness is a function of seed, epoch, index)."""
    if job.role == "student" and (job.teacher_dir or job.distill.alpha > 0):
        raise ValueError("only teachers and the control (alpha = 0) are fingerprinted")
    optim = job.optim.model_dump(mode="json")
    optim["precision"] = resolved_precision(job.optim.precision, resources)
    teacher = job.role == "teacher"
    enhancement = {k: v for k, v in job.enhancement.params().items() if k != "weights"}
    identity = {
        "data": data,
        "weights": {
            "pretrained": file_digest(job.model.pretrained),
            "enhancement": file_digest(job.enhancement.weights()) if teacher else None,
        },
        "clip": job.clip.model_dump(mode="json"),
        "model": job.model.model_dump(mode="json", exclude=SPEED_ONLY | {"pretrained"}),
        "optim": optim,
        "global_batch": resources.num_workers * job.optim.batch_size * job.optim.grad_accum,
        "enhancement": {"name": job.enhancement.name, **enhancement} if teacher else None,
        "deepspeed": job.deepspeed,
        "seed": job.seed,
        "dlkdd": version("dlkdd"),
    }
    if not teacher:  # teachers' identities stay as they were: their runs are reused
        identity["role"] = "control"
    return _digest(identity)[:16]


def soft_target_key(job: JobConfig, resources: Resources, train_data: str) -> str:
    """What a student's stored soft targets depend on: its teacher (weights, input
    enhancement and its weights, as exported), the training clips it will see (`train_data`:
    data_digest of the train split, read once by a caller keying several teachers; seed,
    clip settings) and the dtype its teacher runs in. Of the student's own settings only
    the batch size counts (batched kernels may differ in the last bits), so students of any
    T, alpha or learning rate share one store."""
    meta = read_meta(local_copy(job.teacher_dir))
    enhancement = meta["input_enhancement"] or {"name": "identity"}  # a student as teacher
    teacher = {
        "model": file_digest(join(job.teacher_dir, MODEL_FILE)),
        "arch": meta["arch"],
        "classes": meta["classes"],
        "enhancement": enhancement,
        "enhancement_weights": file_digest(
            join(job.teacher_dir, curve_file_name(enhancement["name"]))
        )
        if enhancement["name"] in CURVE_WEIGHTS
        else None,
    }
    return _digest({"teacher": teacher, **_clips_identity(job, resources, train_data)})[:16]


def clips_key(job: JobConfig, resources: Resources, train_data: str) -> str:
    """What a student's store depends on besides its teacher (see soft_target_key): the
    name a teacher job writes its future students' store under, before it has weights."""
    return _digest(_clips_identity(job, resources, train_data))[:16]


def _clips_identity(job: JobConfig, resources: Resources, train_data: str) -> dict:
    identity = {
        "data": train_data,
        "clip": job.clip.model_dump(mode="json"),
        "batch": job.optim.batch_size,  # conv kernels may differ by batch size: kept exact
        "seed": job.seed,
        "precision": resolved_precision(job.optim.precision, resources),
        "dlkdd": version("dlkdd"),
    }
    if job.distill.top_k:  # stores of every logit keep the keys they had before top-k
        identity["top_k"] = job.distill.top_k
    return identity


def resolved_precision(precision: str, resources: Resources) -> str:
    """What `auto` becomes in the workers: bf16 on GPU, fp32 on CPU (trainers.loop)."""
    if precision != "auto":
        return precision
    return "bf16" if resources.gpus_per_worker > 0 else "fp32"


def data_digest(dataset: DatasetConfig, splits: tuple[str, ...] = ()) -> str:
    """The content of the splits a job reads (all of them by default), wherever the root is.
    Not cached: a list edited in place must change it (reading lists and stat'ing ARID's
    4k videos takes well under a second)."""
    root = Path(dataset.root)
    content = {
        name: {
            "classes": m.classes,
            "items": [(os.path.relpath(p, root), label, _size(p)) for p, label in m.items],
        }
        for name, m in sorted(load_splits(dataset).items())
        if not splits or name in splits
    }
    return _digest(content)


def file_digest(location: str | Path | None) -> str | None:
    """sha256 of a file's bytes (a path or a storage URI); None when there is no file."""
    if location is None:
        return None
    fs, path = filesystem(str(location))
    h = hashlib.sha256()
    with fs.open_input_stream(path) as f:  # read where it lies: a cached copy may be stale
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _size(path: str) -> int:
    """-1 for a video that is missing now: the job replaces it, so it still counts."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
