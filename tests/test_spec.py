"""Bad specs fail with a message naming the field, before any Ray resource is taken."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import search_spaces
from orchestrator.spec import SpecError, load_spec, parse_spec
from tests.conftest import small_spec
from trainers.schedule import deep_merge

SWEEP = {"enhancements": ["gic", "he"], "temperature": {"type": "loguniform", "low": 1, "high": 10},
         "alpha": {"type": "uniform", "low": 0.1, "high": 0.9}}  # fmt: skip


def spec_with(tmp_path: Path, **overrides) -> dict:
    return deep_merge(small_spec(tmp_path, tmp_path, sweep=SWEEP), overrides)


def test_valid_spec_parses(tmp_path: Path) -> None:
    spec = parse_spec(spec_with(tmp_path))
    assert spec.sweep.enhancements == ["gic", "he"] and spec.teacher.model.arch == "tiny"


def test_unknown_enhancement_is_named(tmp_path: Path) -> None:
    data = spec_with(tmp_path, sweep={"enhancements": ["gic", "clahe"]})
    with pytest.raises(SpecError, match=r"sweep.enhancements.1: .*'clahe'"):
        parse_spec(data)


def test_alpha_outside_unit_interval(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"distill.alpha: Input should be less than or equal to 1"):
        parse_spec(spec_with(tmp_path, distill={"alpha": 1.5}))
    with pytest.raises(SpecError, match=r"distill: .*top_k .* needs soft_targets: store"):
        parse_spec(spec_with(tmp_path, distill={"soft_targets": "online", "top_k": 5}))
    assert parse_spec(spec_with(tmp_path, distill={"top_k": 5})).job("teacher").distill.top_k == 5


def test_missing_dataset_root(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"dataset: .*nowhere does not exist"):
        parse_spec(spec_with(tmp_path, dataset={"root": str(tmp_path / "nowhere")}))


def test_submit_leaves_the_dataset_root_to_the_cluster(tmp_path: Path) -> None:
    """A laptop submitting a sweep need not hold the data; the path must be absolute."""
    on_cluster = spec_with(tmp_path, dataset={"root": "/mnt/datasets/ARID_v1"})
    spec = parse_spec(on_cluster, data_on_cluster=True)
    assert spec.dataset.root == Path("/mnt/datasets/ARID_v1")
    with pytest.raises(SpecError, match=r"dataset: .*ARID_v1 must be absolute"):
        parse_spec(spec_with(tmp_path, dataset={"root": "ARID_v1"}), data_on_cluster=True)


def test_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"teacher.optim.learning_rate: unknown key"):
        parse_spec(spec_with(tmp_path, teacher={"optim": {"learning_rate": 0.1}}))


def test_empty_search_dimension(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"sweep.temperature: .*non-empty 'values'"):
        parse_spec(spec_with(tmp_path, sweep={"temperature": {"type": "choice", "values": []}}))


def test_fractional_resources_rejected(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"resources.gpus_per_worker"):
        parse_spec(spec_with(tmp_path, resources={"gpus_per_worker": 0.5}))


def test_spec_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing.yaml: spec file not found"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML"):
        load_spec(tmp_path / "bad.yaml")


@pytest.mark.parametrize("name", ["smoke", "arid", "arid_v1_5", "dark48"])
def test_packaged_specs_validate_given_a_dataset(name: str, tmp_path: Path) -> None:
    data = yaml.safe_load(search_spaces.path(name).read_text())
    data["dataset"]["root"] = str(tmp_path)
    spec = parse_spec(data)
    assert spec.sweep.num_samples >= (3 if name == "smoke" else 6) and spec.sweep.enhancements
    if name != "smoke":
        assert spec.student.model.arch == "r2plus1d_34" and spec.resources.gpus_per_worker == 1
        assert set(spec.sweep.enhancements) == {"zero_dce", "gic", "he"}
        assert spec.student_seeds() == [0, 1, 2] and spec.sweep.confirm_top_k == 3


@pytest.mark.parametrize(
    ("key", "dist", "message"),
    [
        ("alpha", {"type": "uniform", "low": 0.5, "high": 2}, r"sweep.alpha: .*\(0, 1\]"),
        ("alpha", {"type": "choice", "values": [-0.1, 0.5]}, r"sweep.alpha: .*\(0, 1\]"),
        ("alpha", {"type": "choice", "values": [0, 0.5]}, r"control, alpha = 0, is a job"),
        ("temperature", {"type": "uniform", "low": 0, "high": 4}, r"sweep.temperature: .*> 0"),
        ("temperature", {"type": "grid", "values": [-1, 2]}, r"sweep.temperature: .*> 0"),
    ],
)
def test_search_ranges_are_checked(tmp_path: Path, key: str, dist: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec_with(tmp_path, sweep={key: dist}))


def test_minimal_spec_resolves_its_defaults(tmp_path: Path, monkeypatch) -> None:
    """Only name and dataset: the default storage folder is resolved like a given one."""
    monkeypatch.chdir(tmp_path)
    spec = parse_spec({"name": "m", "dataset": {"format": "csv", "root": str(tmp_path)}})
    assert spec.storage.path == str(tmp_path / "dlkdd_runs")
    assert spec.resources.num_workers == 2 and spec.teacher.model.arch == "r2plus1d_18"


def test_set_overrides_reach_every_level(tmp_path: Path) -> None:
    from orchestrator.cli_common import parse_sets

    sets = parse_sets(["dataset.root=/data/ARID_v1", "teacher.optim.lr=0.1",
                       "sweep.enhancements=[gic, he]", "tracking.uri=http://h:5000"])  # fmt: skip
    assert sets == {
        "dataset": {"root": "/data/ARID_v1"},
        "teacher": {"optim": {"lr": 0.1}},
        "sweep": {"enhancements": ["gic", "he"]},
        "tracking": {"uri": "http://h:5000"},
    }


def test_set_on_the_cli_is_validated_with_the_spec(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from orchestrator.cli import app

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec_with(tmp_path)))
    runner = CliRunner()
    for args, message in [
        (["--set", "dataset.bogus=1"], "dataset.bogus: unknown key"),
        (["--set", "sweep.alpha.high=3"], "sweep.alpha: Value error, alpha weighs"),
        (["--set", "dataset.root"], "expected key.path=value"),
        (["--set", f"dataset.root={tmp_path / 'none'}"], "none does not exist"),
    ]:
        # submit leaves the root to the cluster (test_scale_out)
        commands = (["sweep"], ["train", "teacher"]) + (() if "none" in message else (["submit"],))
        for command in commands:
            result = runner.invoke(app, [*command, str(path), *args])
            assert result.exit_code == 2 and message in result.output, (command, result.output)


def test_packaged_specs_take_set_overrides(tmp_path: Path) -> None:
    """A packaged spec's dataset root is elsewhere; --set dataset.root makes it valid here."""
    from orchestrator.cli_common import spec_or_exit

    for name in ("arid", "arid_v1_5", "dark48"):
        spec = spec_or_exit(name, [f"dataset.root={tmp_path}", "storage.path=runs"])
        assert spec.dataset.root == tmp_path and Path(spec.storage.path).is_absolute()


def test_a_local_store_keeps_artifacts_beside_its_database(tmp_path: Path, monkeypatch) -> None:
    """Not in ./mlruns of whatever directory a command (or a test) runs in."""
    import mlflow

    from orchestrator import tracking

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    exp_id = tracking.connect(uri, "where")
    location = mlflow.MlflowClient(uri).get_experiment(exp_id).artifact_location
    assert location == (tmp_path / "store/mlartifacts/where").as_uri()
    with mlflow.start_run(experiment_id=exp_id):
        mlflow.log_text("x", "x.txt")
    assert list(elsewhere.iterdir()) == []
    assert (tmp_path / "store/mlartifacts/where").is_dir()


def test_a_sweeps_seeds(tmp_path: Path) -> None:
    """By default one seed, the spec's; given seeds must not repeat; a job's seed never
    moves the validation hold-out (the dataset's split_seed)."""
    assert parse_spec(spec_with(tmp_path, seed=4)).student_seeds() == [4]
    spec = parse_spec(spec_with(tmp_path, sweep={"seeds": [3, 1]}))
    assert spec.student_seeds() == [3, 1]
    assert spec.job("student", alpha=0.0, seed=1).seed == 1 and spec.job("teacher").seed == 0
    assert spec.job("student", alpha=0.0, seed=1).dataset == spec.job("teacher").dataset
    with pytest.raises(SpecError, match="sweep.seeds: .*must not repeat"):
        parse_spec(spec_with(tmp_path, sweep={"seeds": [0, 0]}))
