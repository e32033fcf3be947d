"""A sweep's set-up without Ray jobs: the searcher is seeded from the spec (the same spec
suggests the same students), and a restored tracker writes where the resuming driver points."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from ray import cloudpickle
from ray.tune.experiment import Experiment
from ray.tune.search import Searcher

from orchestrator.search import first_points, search_algorithm, tune_space
from orchestrator.spec import parse_spec
from tests.conftest import small_spec

SWEEP = {"enhancements": ["gic", "he"], "search": "optuna",
         "temperature": {"type": "loguniform", "low": 1, "high": 8},
         "alpha": {"type": "uniform", "low": 0.1, "high": 0.9}}  # fmt: skip


def suggestions(root: Path, seed: int, n: int = 4) -> list[dict]:
    spec = parse_spec(small_spec(root, root, sweep=SWEEP, seed=seed))
    searcher = search_algorithm(spec.sweep, first_points(spec.sweep), lambda: 1, spec.seed)
    searcher.set_search_properties("val_top1", "max", tune_space(spec.sweep))
    made = []
    for i in range(n):
        made.append(searcher.suggest(f"t{i}"))
        searcher.on_trial_complete(f"t{i}", {"val_top1": 0.1 * i})  # frees the one slot
    return made


def test_same_spec_same_optuna_suggestions(synth_root: Path) -> None:
    first = suggestions(synth_root, seed=3)
    assert all(s["alpha"] > 0 for s in first)  # the control is no trial of the search
    assert suggestions(synth_root, seed=3) == first
    assert suggestions(synth_root, seed=4) != first


class Slots:
    """A cluster's trial slots, set by the test (a node joins: more)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self) -> int:
        return self.n


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_more_trials_go_live_as_the_cluster_grows(
    synth_root: Path, tmp_path: Path, search: str
) -> None:
    """The searcher's concurrency limit is asked again for every trial: 1 slot gives one
    live trial, a joined node (3 slots) two more, and it survives Tune's pickling."""
    spec = parse_spec(small_spec(synth_root, synth_root, sweep={**SWEEP, "search": search,
                                                                "num_samples": 6}))  # fmt: skip
    slots = Slots(1)
    searcher = search_algorithm(spec.sweep, first_points(spec.sweep), slots, spec.seed)
    if isinstance(searcher, Searcher):
        searcher.set_search_properties("val_top1", "max", tune_space(spec.sweep))
    else:  # random search generates Tune trials from an experiment, as Tune gives it
        searcher.add_configurations(Experiment("e", lambda config: None, num_samples=7,
                                               config=tune_space(spec.sweep),
                                               storage_path=str(tmp_path)))  # fmt: skip

    def live_after_asking() -> int:
        for _ in range(5):
            if isinstance(searcher, Searcher):
                searcher.suggest(f"t{len(made)}") is not None and made.append(1)
            elif searcher.next_trial() is not None:
                made.append(1)
        return len(made)

    made: list[int] = []
    assert live_after_asking() == 1
    slots.n = 3
    assert live_after_asking() == 3
    assert cloudpickle.loads(cloudpickle.dumps(searcher)).max_concurrent == 3  # tuner.pkl


def test_a_restored_student_tracker_writes_to_the_resuming_drivers_mlflow(
    synth_root: Path, tmp_path: Path
) -> None:
    """`sweep --resume --tracking-uri NEW`: Tune unpickles the tracker; it must write to
    NEW, where the resuming driver connected, not to the URI of the first driver."""
    import mlflow

    from orchestrator import tracking
    from orchestrator.tracking_tune import StudentTracker

    old = tracking.connect(f"sqlite:///{tmp_path / 'old.db'}", "e")
    spec = parse_spec(small_spec(synth_root, tmp_path, sweep=SWEEP))
    teachers = {"gic": {"run_id": "r", "fingerprint": "f", "export": str(tmp_path)}}
    restored = pickle.loads(pickle.dumps(StudentTracker(old, "parent", spec, teachers, {})))
    new_uri = f"sqlite:///{tmp_path / 'new.db'}"
    new = tracking.connect(new_uri, "e")
    with mlflow.start_run() as parent:
        restored.experiment_id, restored.parent_run_id = new, parent.info.run_id
        run_id = restored.run_id("trial1", {"alpha": 0.5, "temperature": 1.0, "enhancement": "gic"})
    assert mlflow.MlflowClient(new_uri).get_run(run_id).data.tags["dlkdd.trial_id"] == "trial1"


def test_trial_slots_are_asked_again_after_a_restore() -> None:
    """Tune pickles the searcher, slot count and all; on `sweep --resume` (maybe on another
    head) the count must be worked out anew, not kept until the old clock's time comes."""
    from orchestrator.spec import Resources
    from orchestrator.students import TrialSlots

    slots = TrialSlots(Resources())
    slots.count, slots.at = 7, 1e12  # as if just computed on a long-running head
    restored = pickle.loads(pickle.dumps(slots))
    assert restored.count == 1 and restored.at == float("-inf")


def result(trial_id: str, val: float, epoch: int, enhancement: str = "gic", t: float = 2.0):
    """What confirm_points reads of a Tune result: its config and last report."""
    from types import SimpleNamespace

    return SimpleNamespace(
        config={"enhancement": enhancement, "temperature": t, "alpha": 0.5},
        metrics={"trial_id": trial_id, "val_top1": val, "epoch": epoch},
    )


def test_the_confirm_runs_take_the_best_full_budget_configurations(synth_root: Path) -> None:
    """The best `confirm_top_k` configurations by validation among trials that trained the
    whole budget (an early-stopped one is no candidate; a repeated point counts once), each
    on every seed but the search's."""
    from orchestrator.students import confirm_points

    sweep = SWEEP | {"seeds": [0, 1, 2], "confirm_top_k": 2}
    spec = parse_spec(small_spec(synth_root, synth_root, sweep=sweep))  # 5 epochs
    grid = [result("a", 0.9, 2), result("b", 0.7, 5, t=3.0), result("c", 0.8, 5, "he"),
            result("d", 0.6, 5, "he"), result("e", 0.8, 5, "he")]  # fmt: skip
    points = confirm_points(grid, spec)
    assert [(p["enhancement"], p["temperature"], p["seed"]) for p in points] == [
        ("he", 2.0, 1), ("he", 2.0, 2), ("gic", 3.0, 1), ("gic", 3.0, 2)]  # fmt: skip
    one_seed = parse_spec(small_spec(synth_root, synth_root, sweep=SWEEP))
    assert confirm_points(grid, one_seed) == []


def test_each_seed_has_its_control_and_one_split(synth_root: Path) -> None:
    """A control per seed, keyed apart and fingerprinted apart; one hold-out for all."""
    from orchestrator.fingerprint import data_digest, job_fingerprint
    from orchestrator.teachers import CONTROL, is_control, reference_jobs

    spec = parse_spec(small_spec(synth_root, synth_root, sweep=SWEEP | {"seeds": [0, 2]}))
    jobs = reference_jobs(spec)
    assert sorted(jobs) == [CONTROL, f"{CONTROL}.2", "gic", "he"]
    assert [jobs[k].seed for k in jobs if is_control(k)] == [0, 2]
    assert {jobs[k].seed for k in ("gic", "he")} == {0}  # teachers: once, on the spec's seed
    data = data_digest(spec.dataset)
    prints = {job_fingerprint(jobs[k], spec.resources, data) for k in (CONTROL, f"{CONTROL}.2")}
    assert len(prints) == 2


def test_each_seed_distils_from_its_own_teacher_when_asked(synth_root: Path) -> None:
    """`teacher_seeds: each`: the search's teachers on the first seed, a confirm seed's
    keyed `<enhancement>.<seed>` and trained on it, and each trial's job names its seed's
    teacher; with the default every seed shares the first seed's teacher."""
    from orchestrator.search import trial_job
    from orchestrator.teachers import reference_jobs, teacher_jobs

    seeds = {"seeds": [3, 5], "teacher_seeds": "each"}
    each = parse_spec(small_spec(synth_root, synth_root, sweep=SWEEP | seeds))
    assert {k: j.seed for k, j in reference_jobs(each).items() if "control" not in k} == {
        "gic": 3, "he": 3}  # fmt: skip
    assert {k: j.seed for k, j in teacher_jobs(each, ["he"], [5]).items()} == {"he.5": 5}
    exports = {"he": "/t/he-seed3", "he.5": "/t/he-seed5"}
    point = {"enhancement": "he", "temperature": 2.0, "alpha": 0.5}
    assert trial_job(each, point, exports, {}).teacher_dir == "/t/he-seed3"
    assert trial_job(each, point | {"seed": 5}, exports, {}).teacher_dir == "/t/he-seed5"
    first = parse_spec(small_spec(synth_root, synth_root, sweep=SWEEP | {"seeds": [3, 5]}))
    assert trial_job(first, point | {"seed": 5}, exports, {}).teacher_dir == "/t/he-seed3"
    assert teacher_jobs(first, ["he"], [5])["he"].seed == first.seed
    with pytest.raises(ValueError, match="teacher_seeds"):
        parse_spec(small_spec(synth_root, synth_root, sweep=SWEEP | {"teacher_seeds": "all"}))
