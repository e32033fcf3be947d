"""Sweep spec -> Ray Tune search space and search algorithm."""

from __future__ import annotations

from typing import Any

from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from orchestrator.spec import Dist, SweepConfig


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


def control_point(sweep: SweepConfig) -> dict[str, Any]:
    """The no-distillation baseline: alpha = 0 trains on original video with plain CE."""
    return {"temperature": 1.0, "alpha": 0.0, "enhancement": sweep.enhancements[0]}


def first_points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Trials run before the searcher's own: the control, and with `probe_each_enhancement`
    one student per enhancement at the centre of the temperature and alpha ranges."""
    probes = [
        {"temperature": sweep.temperature.centre(), "alpha": sweep.alpha.centre(), "enhancement": e}
        for e in sweep.enhancements
    ]
    return [control_point(sweep), *(probes if sweep.probe_each_enhancement else [])]


def search_algorithm(
    sweep: SweepConfig, points: list[dict[str, Any]], concurrency: int, seed: int
) -> Searcher | BasicVariantGenerator:
    """Seeded from the spec: the same spec suggests the same configurations."""
    if sweep.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(points_to_evaluate=points, seed=seed), concurrency)
    return BasicVariantGenerator(
        points_to_evaluate=points, max_concurrent=concurrency, random_state=seed
    )
