"""Soft-target stores: each teacher's logits for every (epoch, clip) its students may train
on, computed once and read by every student of every later sweep with the same teacher,
data, seed and clip settings. A sweep's (or `dlkdd train teacher`'s) teacher job writes its
students' store at its end (`store_request`), saving a Ray Train job's start-up; a store
that no teacher left (another seed, a longer study, a teacher of an older dlkdd) is
computed by a Train job of its own (`trainers.soft_targets.compute_func`).

A store lies in `<storage>/soft_targets/<key>-e<epochs>.pt`; a study that trains longer
than the newest store holds computes only the missing epochs, into a new file (stores are
never rewritten: nodes cache what they read by name)."""

from __future__ import annotations

import re
from functools import partial

import ray

from orchestrator.fingerprint import clips_key, data_digest, resolved_precision, soft_target_key
from orchestrator.jobs import failure, fit, in_turn, jobs_at_once, torch_trainer
from orchestrator.progress import console
from orchestrator.spec import Resources, Spec
from trainers import soft_targets
from trainers.config import JobConfig, StoreRequest
from trainers.storage import copy, join, names_in

FOLDER = "soft_targets"


def ensure_store(
    job: JobConfig, resources: Resources, storage: str, train_data: str | None = None
) -> str:
    """The location of a store holding the student job's `optim.epochs` (made if needed);
    `train_data`: the train split's data_digest, when the caller has read it already."""
    train_data = train_data or data_digest(job.dataset, splits=("train",))
    key = soft_target_key(job, resources, train_data)
    folder = join(storage, FOLDER)
    held = newest(folder, key)
    if held < job.optim.epochs:
        held = max(held, adopted(job, resources, train_data, join(folder, key), held))
    if held >= job.optim.epochs:
        return join(folder, f"{key}-e{held}.pt")
    destination = join(folder, f"{key}-e{job.optim.epochs}.pt")
    config = {
        "job": job.model_dump(mode="json"),
        "first": held,
        "last": job.optim.epochs,
        "previous": join(folder, f"{key}-e{held}.pt") if held else None,
        "destination": destination,
        "bf16": resolved_precision(job.optim.precision, resources) == "bf16",
        "top_k": job.distill.top_k,
    }
    name = f"soft-targets-{key}-e{job.optim.epochs}"
    trainer = torch_trainer(soft_targets.compute_func, config, resources, storage, name)
    try:
        error = fit(trainer).error
    except Exception as err:  # Train V2 raises when its run fails
        error = err
    if error is not None:
        raise RuntimeError(f"soft targets of teacher {job.teacher_dir} failed: {failure(error)}")
    return destination


def store_requests(spec: Spec, seeds: list[int]) -> dict[int, list[StoreRequest]]:
    """By student seed, what their teacher's job is asked to write at its end: the store
    they read (nothing when students run their teacher online)."""
    if spec.distill.soft_targets == "online":
        return {s: [] for s in seeds}
    data = data_digest(spec.dataset, splits=("train",))
    return {s: [store_request(spec, s, data)] for s in seeds}


def store_request(spec: Spec, seed: int, train_data: str) -> StoreRequest:
    """What a teacher job is asked to write at its end for the spec's students of `seed`
    (`train_data`: data_digest of the train split): their clips, batch, budget and dtype."""
    students = spec.job("student", alpha=0.0, seed=seed)  # as the distilled ones but T, alpha
    return StoreRequest(
        key=clips_key(students, spec.resources, train_data),
        clip=students.clip,
        seed=seed,
        batch_size=students.optim.batch_size,
        epochs=students.optim.epochs,
        bf16=resolved_precision(students.optim.precision, spec.resources) == "bf16",
        top_k=students.distill.top_k,
    )


def adopted(job: JobConfig, resources: Resources, train_data: str, stem: str, held: int) -> int:
    """Copies the store the student job's teacher wrote at its end for such students to
    `<stem>-e<epochs>.pt` when it holds more epochs than the `held` already there; returns
    how many epochs it holds (0: the teacher wrote none)."""
    offered = soft_targets.offered_by(job.teacher_dir)
    name = clips_key(job, resources, train_data)
    epochs = newest(offered, name)
    if epochs > held:
        copy(join(offered, f"{name}-e{epochs}.pt"), f"{stem}-e{epochs}.pt")
    return epochs


def newest(folder: str, key: str) -> int:
    """How many epochs the largest store of `key` holds (0: none yet)."""
    pattern = re.compile(rf"{re.escape(key)}-e(\d+)\.pt")
    return max((int(m[1]) for n in names_in(folder) if (m := pattern.fullmatch(n))), default=0)


@ray.remote(num_cpus=0)
def _ensure_remote(job: JobConfig, resources: Resources, storage: str, train_data: str) -> str:
    return ensure_store(job, resources, storage, train_data)


def ensure_stores(
    jobs: dict[tuple[str, int], JobConfig], resources: Resources, storage: str
) -> dict[tuple[str, int], str]:
    """A store for each teacher's students on each seed (`jobs`: a student job per teacher
    enhancement and seed, all on one dataset), the missing ones computed as concurrent
    Train jobs; keyed as `jobs` are."""
    first = next(iter(jobs.values()))
    data = data_digest(first.dataset, splits=("train",))  # read once for all
    launches = {k: partial(_ensure_remote.remote, j, resources, storage, data)
                for k, j in jobs.items()}  # fmt: skip
    stores = {}
    slots = partial(jobs_at_once, resources)
    with console.status(f"soft targets of {len(jobs)} teacher(s) and seed(s), {slots()} at a time"):
        for (enhancement, seed), location, _ in in_turn(launches, slots):
            console.print(f"soft targets of teacher [bold]{enhancement}[/bold], seed {seed}: "
                          f"{location}", soft_wrap=True)  # fmt: skip
            stores[enhancement, seed] = location
    return stores
