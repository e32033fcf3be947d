"""Sweep spec -> Ray Tune search space and search algorithm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from orchestrator.spec import Dist, Spec, SweepConfig
from trainers.config import JobConfig

Stores = dict[tuple[str, int], str]  # (teacher enhancement, seed) -> its soft-target store


def dimension(d: Dist) -> Any:
    if d.type == "choice":
        return tune.choice(d.values)
    if d.type == "grid":
        return tune.grid_search(d.values)
    if d.type == "uniform":
        return tune.uniform(d.low, d.high)
    if d.type == "loguniform":
        return tune.loguniform(d.low, d.high)
    return tune.randint(int(d.low), int(d.high))


def tune_space(sweep: SweepConfig) -> dict[str, Any]:
    enhancements = (
        tune.grid_search(sweep.enhancements)
        if sweep.search == "grid"
        else tune.choice(sweep.enhancements)
    )
    return {
        "temperature": dimension(sweep.temperature),
        "alpha": dimension(sweep.alpha),
        "enhancement": enhancements,
    }


def first_points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Trials run before the searcher's own: with `probe_each_enhancement`, one student per
    enhancement at the centre of the temperature and alpha ranges."""
    if not sweep.probe_each_enhancement:
        return []
    centre = {"temperature": sweep.temperature.centre(), "alpha": sweep.alpha.centre()}
    return [{**centre, "enhancement": e} for e in sweep.enhancements]


def confirm_space(points: list[dict[str, Any]]) -> dict[str, Any]:
    """A space holding the confirm runs' points (configuration and seed), which are given to
    the searcher as its points to evaluate: one trial each, nothing sampled."""
    return {k: tune.choice(sorted({p[k] for p in points})) for k in points[0]}


def trial_job(
    spec: Spec, config: dict[str, Any], teachers: dict[str, str], stores: Stores
) -> JobConfig:
    """A trial's student job: its configuration's teacher (`teachers`: exports by
    `Spec.teacher_key`) and soft-target store, on the trial's seed: a confirm run's own, else the
    search's (the first of the sweep's seeds)."""
    enhancement, seed = config["enhancement"], int(config.get("seed", spec.student_seeds()[0]))
    return spec.job(
        "student",
        teacher_dir=teachers[spec.teacher_key(enhancement, seed)],
        temperature=float(config["temperature"]),
        alpha=float(config["alpha"]),
        soft_target_store=stores.get((enhancement, seed)),
        seed=seed,
    )


class _LiveLimit:
    """For Tune's two concurrency limits: `max_concurrent` is asked of `slots` whenever Tune
    wants another trial, so trials start on nodes as they join (Tune's own limit is one
    number fixed at the start). The number the base classes set in __init__ is ignored."""

    slots: Callable[[], int]

    @property
    def max_concurrent(self) -> int:
        return self.slots()

    @max_concurrent.setter
    def max_concurrent(self, fixed: int) -> None:
        pass


class LiveVariants(_LiveLimit, BasicVariantGenerator):
    """Random or grid search with a live concurrency limit."""

    def __init__(self, slots: Callable[[], int], **kwargs: Any) -> None:
        self.slots = slots
        super().__init__(max_concurrent=1, **kwargs)


class LiveLimiter(_LiveLimit, ConcurrencyLimiter):
    """A searcher (Optuna) with a live concurrency limit."""

    def __init__(self, searcher: Searcher, slots: Callable[[], int]) -> None:
        self.slots = slots
        super().__init__(searcher, max_concurrent=1)


def search_algorithm(
    sweep: SweepConfig, points: list[dict[str, Any]], slots: Callable[[], int], seed: int
) -> Searcher | BasicVariantGenerator:
    """Seeded from the spec: the same spec suggests the same configurations. At most
    `slots()` trials are live at once (suggested and not yet ended)."""
    if sweep.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return LiveLimiter(OptunaSearch(points_to_evaluate=points or None, seed=seed), slots)
    return LiveVariants(slots, points_to_evaluate=points or None, random_state=seed)
