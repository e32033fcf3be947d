"""The soft-target store: a student reading its teacher's stored logits trains exactly as
one running the teacher online (fp32 CPU, 1e-5), batches with a replaced bad video
included; the store is computed by a sharded Ray Train job, reused and extended."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import deepspeed
import mlflow
import pytest
import torch
import yaml
from pyarrow.fs import FileType
from torch.utils.data import DataLoader, DistributedSampler

from orchestrator.jobs import run_job
from orchestrator.spec import parse_spec
from orchestrator.stores import ensure_store
from tests.conftest import small_spec
from trainers import export, models, schedule
from trainers.config import JobConfig, StoreRequest
from trainers.data.clips import ClipDataset, KeyedClips
from trainers.data.epoch_sampler import EpochSampler
from trainers.data.manifests import load_splits
from trainers.loop import train_step
from trainers.soft_targets import (
    OnlineTeacher,
    StoredTeacher,
    assemble,
    logits_for,
    offered_by,
    read,
    write_requested,
)
from trainers.storage import local_copy, local_file, names_in

CPU, FP32 = torch.device("cpu"), torch.float32


def with_bad_video(root: Path, work: Path, corrupt: Path) -> Path:
    """A copy of a dataset whose first training video of one class is not a video."""
    copy = work / "data"
    shutil.copytree(root, copy)
    victim = sorted((copy / "videos").glob("*/train_*.mp4"))[0]
    shutil.copy(corrupt, victim)
    return copy


def every_key(train_set: ClipDataset, first: int, last: int) -> list[tuple[int, int]]:
    return [(e, i) for e in range(first, last) for i in range(len(train_set))]


def online_logits(job: JobConfig, first: int, last: int) -> torch.Tensor:
    """[epochs, clips, classes] from the teacher run in this process, clip by clip."""
    train_set = train_clips(job)
    keys = every_key(train_set, first, last)
    teacher = OnlineTeacher.load(job.teacher_dir, job.clip, CPU, FP32)
    shard = logits_for(teacher, train_set, keys, job.optim.batch_size, job.dataset.num_workers)
    return assemble([(keys, shard)], first, last, len(train_set))


def train_clips(job: JobConfig) -> ClipDataset:
    items = load_splits(job.dataset)["train"].items
    return ClipDataset(items, job.clip, "train", job.seed)


@pytest.fixture(scope="module")
def random_teacher(tmp_path_factory, synth_root: Path) -> Path:
    """An exported tiny teacher on gic input, untrained: its logits still differ per clip."""
    torch.manual_seed(1)
    classes = load_splits(small_job(synth_root, "unused").dataset)["train"].classes
    meta = {"role": "teacher", "arch": "tiny", "classes": classes, "clip": {}, "metrics": {},
            "input_enhancement": {"name": "gic", "gamma": 2.0, "curve": "authors"}}  # fmt: skip
    out = tmp_path_factory.mktemp("teacher") / "export"
    return export.export(out, models.build("tiny", len(classes)).state_dict(), meta)


def small_job(root: Path, teacher_dir: str) -> JobConfig:
    """A student of 2 epochs, batches of 4 (nothing is written: storage is not used)."""
    spec = parse_spec(small_spec(root, root, student={"optim": {"epochs": 2, "batch_size": 4}}))
    return spec.job("student", teacher_dir=teacher_dir, temperature=3.0, alpha=0.7)


def step_losses(job: JobConfig, teacher) -> tuple[list[float], int]:
    """Every micro-step's loss of a student trained for the job's epochs in this process
    (world size 1, the worker loop's sampler, loader and train_step); and the bad videos hit."""
    torch.manual_seed(job.seed)
    model = models.build(job.model.arch, 4)
    opt, config = (
        schedule.optimiser(model, job.optim),
        schedule.deepspeed_config(job.optim, False, {}),
    )
    engine, *_ = deepspeed.initialize(model=model, optimizer=opt, config=config)
    train_set = train_clips(job)
    sampler = EpochSampler(DistributedSampler(train_set, 1, 0, shuffle=True, seed=job.seed))
    loader = DataLoader(KeyedClips(train_set), job.optim.batch_size, sampler=sampler,
                        drop_last=True)  # fmt: skip
    losses, bad = [], 0
    for epoch in range(job.optim.epochs):
        sampler.set_epoch(epoch)
        for clips, labels, skipped, keys in loader:
            loss = train_step(engine, engine, clips, labels, job, FP32, None, teacher, keys)
            losses.append(loss.item())
            bad += int(skipped.sum())
    return losses, bad


def test_store_gives_the_online_students_steps(
    process_group, synth_root, tmp_path, corrupt_video, random_teacher
) -> None:
    root = with_bad_video(synth_root, tmp_path, corrupt_video)
    job = small_job(root, str(random_teacher))
    online, bad = step_losses(job, OnlineTeacher.load(job.teacher_dir, job.clip, CPU, FP32))
    stored, _ = step_losses(job, StoredTeacher(online_logits(job, 0, job.optim.epochs)))
    assert bad >= 1  # some batches carried a replacement for the bad video
    assert len(stored) == len(online) == 2 * 32 // 4
    torch.testing.assert_close(torch.tensor(stored), torch.tensor(online), rtol=0, atol=1e-5)
    # and the teacher matters: without it the steps differ
    ce = job.model_copy(update={"role": "teacher"})  # plain CE, same clips and init
    plain, _ = step_losses(ce, None)
    assert max(abs(a - b) for a, b in zip(plain, online, strict=True)) > 1e-3


def test_store_job_matches_online_and_students_train_the_same(
    teacher_run, tmp_path, corrupt_video
) -> None:
    """The sharded Ray Train store job (2 workers), then a store student and an online
    student (2 workers each, same seed): same per-epoch losses and the same weights; then
    a longer study extends the store by the missing epoch only."""
    spec_file, _ = teacher_run
    mlflow.set_tracking_uri(f"sqlite:///{spec_file.parent / 'mlflow.db'}")
    teacher, *_ = mlflow.search_runs(experiment_names=["dlkdd"], output_format="list",
                                     filter_string="tags.`dlkdd.role` = 'teacher'")  # fmt: skip
    trained_on = Path(yaml.safe_load(spec_file.read_text())["dataset"]["root"])
    root = with_bad_video(trained_on, tmp_path, corrupt_video)
    spec = parse_spec(small_spec(root, tmp_path, student={"optim": {"epochs": 2}}))
    storage, r = spec.storage.resolved(), spec.resources
    job = spec.job("student", teacher_dir=teacher.data.tags["dlkdd.export_dir"], alpha=0.7)

    store = ensure_store(job, r, storage)
    assert store.endswith("-e2.pt")
    logits = torch.load(local_file(store), weights_only=True)
    torch.testing.assert_close(logits, online_logits(job, 0, 2), rtol=0, atol=1e-5)

    from_store = run_job(job.model_copy(update={"soft_target_store": store}), r, storage, "s")
    online_job = job.model_copy(update={"distill": job.distill.model_copy(
        update={"soft_targets": "online"})})  # fmt: skip
    online = run_job(online_job, r, storage, "o")
    assert from_store.error is None and online.error is None, (from_store.error, online.error)
    assert sum(h["bad_clips"] for h in online.history) >= 1
    for a, b in zip(from_store.history, online.history, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5
    weights = [export.load(local_copy(str(x.export_dir)))[0].state_dict() for x in
               (from_store, online)]  # fmt: skip
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=1e-5)

    longer = job.model_copy(update={"optim": job.optim.model_copy(update={"epochs": 3})})
    extended = ensure_store(longer, r, storage)
    assert extended.endswith("-e3.pt") and extended != store
    more = torch.load(local_file(extended), weights_only=True)
    assert torch.equal(more[:2], logits)  # kept, not recomputed
    torch.testing.assert_close(more[2:], online_logits(job, 2, 3), rtol=0, atol=1e-5)
    assert ensure_store(job, r, storage) == extended  # a shorter study reads the longer store


def test_a_teacher_job_leaves_its_students_store(teacher_run) -> None:
    """`train teacher` (as a sweep's teachers do) computes at its end the store of its
    spec's students: a student's ensure_store takes it, no Train job of its own runs, and it
    holds the online teacher's logits for every epoch the students train."""
    spec_file, _ = teacher_run
    spec = parse_spec(yaml.safe_load(spec_file.read_text()))
    mlflow.set_tracking_uri(spec.tracking.uri)
    teacher, *_ = mlflow.search_runs(experiment_names=["dlkdd"], output_format="list",
                                     filter_string="tags.`dlkdd.role` = 'teacher'")  # fmt: skip
    exported = teacher.data.tags["dlkdd.export_dir"]
    offered = names_in(offered_by(exported))
    assert len(offered) == 1 and offered[0].endswith(f"-e{spec.student.optim.epochs}.pt")
    job = spec.job("student", teacher_dir=exported, alpha=0.7)
    storage = spec.storage.resolved()
    store = ensure_store(job, spec.resources, storage)
    train_run = "soft-targets-" + store.rsplit("/", 1)[1].removesuffix(".pt")
    assert train_run not in names_in(storage, FileType.Directory)  # taken, not computed
    logits = torch.load(local_file(store), weights_only=True)
    epochs = job.optim.epochs
    torch.testing.assert_close(logits, online_logits(job, 0, epochs), rtol=0, atol=1e-5)
    # students on another seed have no store from this teacher: a job computes theirs,
    # here a top-1 store (gathered from 2 workers), which a student job trains from
    other = spec.job("student", teacher_dir=exported, alpha=0.7, seed=job.seed + 1)
    other = other.model_copy(update={"distill": other.distill.model_copy(update={"top_k": 1})})
    top1 = ensure_store(other, spec.resources, storage)
    assert top1 != store
    held = torch.load(local_file(top1), weights_only=True)
    best = online_logits(other, 0, epochs).max(-1)
    torch.testing.assert_close(held["values"][..., 0], best.values, rtol=0, atol=1e-5)
    assert torch.equal(held["indices"][..., 0].long(), best.indices)
    student = run_job(other.model_copy(update={"soft_target_store": top1}), spec.resources,
                      storage, "top1-student")  # fmt: skip
    assert student.error is None, student.error
    assert all(math.isfinite(h["train_loss"]) for h in student.history)


def test_the_teachers_end_writes_every_logit_or_the_top_k(
    process_group, synth_root, random_teacher, tmp_path
) -> None:
    """The stores a teacher job is asked for, written as its end does (world size 1, in
    this process): every logit, as the online teacher gives them; top-2, whose student
    sees the 2 largest where the teacher put them and -inf elsewhere; top-k of every class,
    from which a student trains as from the full store."""
    job = small_job(synth_root, str(random_teacher))
    _, meta = export.load(random_teacher)
    classes = len(meta["classes"])
    asked = {name: StoreRequest(key=name, clip=job.clip, seed=job.seed, epochs=job.optim.epochs,
                                batch_size=job.optim.batch_size, bf16=False, top_k=k)
             for name, k in (("all", None), ("top2", 2), ("every", classes))}  # fmt: skip
    teacher = job.model_copy(update={"role": "teacher", "soft_targets_for": list(asked.values())})
    enhancer = export.input_enhancer(random_teacher, meta)
    model = lambda: export.load(random_teacher)[0]  # noqa: E731 (a fresh copy per store)
    write_requested(teacher, train_clips(job).items, model, enhancer, 0, 1, CPU, tmp_path)

    def stored(name: str) -> StoredTeacher:
        train_set = train_clips(job)
        return read(str(tmp_path / f"{name}-e2.pt"), 2, len(train_set), FP32, CPU)

    online = online_logits(job, 0, 2)
    full = stored("all")
    torch.testing.assert_close(full.logits, online, rtol=0, atol=1e-6)
    keys = torch.tensor(every_key(train_clips(job), 0, 2))
    top2 = stored("top2")(None, keys)
    rows = online.flatten(0, 1)
    kept = top2.isfinite()
    assert kept.sum(1).eq(2).all() and torch.equal(top2[kept], rows[kept])
    torch.testing.assert_close(top2.topk(2).values, rows.topk(2).values, rtol=0, atol=0)
    losses = [step_losses(job, t)[0] for t in (full, stored("every"))]
    torch.testing.assert_close(torch.tensor(losses[0]), torch.tensor(losses[1]), rtol=0, atol=1e-6)
