"""The clean console: what Ray, Tune and DeepSpeed print goes to a log file, dlkdd's own
lines and the live trial table stay on the terminal."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

SCRIPT = """
import os, subprocess, sys, warnings
from pathlib import Path
from orchestrator.progress import console
from orchestrator.quiet import quiet
with quiet(Path(sys.argv[1]), verbose=sys.argv[2] == "1"):
    print("a python print")
    os.write(1, b"fd one\\n")
    os.write(2, b"fd two\\n")
    subprocess.run(["echo", "a child process"])
    warnings.warn("a library warning")
    console.print("a dlkdd line")
print("after the block")
"""


def run(tmp_path: Path, verbose: bool) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "logs" / "sweep.log"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "1" if verbose else "0"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return result, log.read_text() if log.exists() else ""


def test_library_output_goes_to_the_log_and_dlkdd_stays(tmp_path: Path) -> None:
    result, log = run(tmp_path, verbose=False)
    for line in ("a python print", "fd one", "fd two", "a child process", "a library warning"):
        assert line in log and line not in result.stdout + result.stderr, line
    assert "a dlkdd line" in result.stdout and "a dlkdd line" not in log
    assert "after the block" in result.stdout  # the streams are back
    assert str(tmp_path / "logs" / "sweep.log") in result.stdout.replace("\n", "")


def test_verbose_keeps_everything_on_the_console(tmp_path: Path) -> None:
    result, log = run(tmp_path, verbose=True)
    assert log == "" and "fd one" in result.stdout and "fd two" in result.stderr
    assert "a library warning" in result.stderr and "a dlkdd line" in result.stdout


def trial(trial_id: str, **config) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config=config)


def test_the_trial_board_shows_each_trial_and_survives_a_pickle() -> None:
    """Tune pickles callbacks with the experiment (restored on --resume)."""
    from rich.console import Console

    from orchestrator.live import TrialBoard

    board = TrialBoard("search", total=2, default_seed=0)
    a = trial("a_00000", enhancement="gic", temperature=2.0, alpha=0.5)
    b = trial("b_00001", enhancement="he", temperature=4.0, alpha=0.7, seed=1)
    board.on_trial_start(0, [], a)
    board.on_trial_result(0, [], a, {"epoch": 2, "val_top1": 0.625})
    board.on_trial_complete(0, [], a)
    board.on_trial_start(0, [], b)
    board = pickle.loads(pickle.dumps(board))
    out = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(board.table())
    text = out.export_text()
    assert "1/2 trials done" in text and "left" in text
    assert "a_00000" in text and "done" in text and "0.625" in text and "gic" in text
    assert "b_00001" in text and "running" in text and "he" in text
    row_b = next(line for line in text.splitlines() if "b_00001" in line)
    cells = [c.strip() for c in row_b.split("│") if c.strip()]
    assert cells[-1] == "1"  # its seed; no validation yet


def test_the_reference_board_shows_each_jobs_epochs_of_its_budget(tmp_path: Path) -> None:
    """Teachers and controls train for many epochs before any student: their rows show the
    epochs done, read from the job's newest checkpoint (a half-written one is skipped)."""
    from rich.console import Console

    from orchestrator.jobs import progress
    from orchestrator.live import JobBoard

    run = tmp_path / "smk-teacher-gic-abc"
    (run / "checkpoint_2026-12-02_10-00-00.000000").mkdir(parents=True)
    (run / "checkpoint_2026-12-02_10-00-00.000000/state.json").write_text(
        '{"epoch": 3, "history": [{"val_top1": 0.5}, {"val_top1": 0.25}, {"val_top1": 0.75}]}'
    )
    assert progress(str(tmp_path), run.name) == {"epoch": 3, "val_top1": 0.75}
    (run / "checkpoint_2026-12-02_10-05-00.000000").mkdir()
    (run / "checkpoint_2026-12-02_10-05-00.000000/state.json").write_text('{"epoch": 4, "hi')
    assert progress(str(tmp_path), run.name) is None  # being written: asked again later

    board = JobBoard({"gic": "teacher [bold]gic[/bold]", "control": "the control"},
                     {"gic": 40, "control": 40})  # fmt: skip
    board.update("gic", "training", {"epoch": 3, "val_top1": 0.75})
    board.update("control", "done", {"epoch": 40, "val_top1": 0.5})
    out = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(board.table())
    text = out.export_text()
    assert "1/2 reference jobs done" in text and "left" in text
    gic = next(line for line in text.splitlines() if "teacher gic" in line)
    assert [c.strip() for c in gic.split("│") if c.strip()][1:4] == ["training", "3/40", "0.750"]
    assert "40/40" in next(line for line in text.splitlines() if "the control" in line)


def test_the_console_follows_stdout_again_after_the_block(tmp_path: Path, monkeypatch) -> None:
    """In one process (a test runner invoking the CLI twice), the second command's lines
    must reach the second command's stdout, not the first's closed one."""
    import io

    from orchestrator.progress import console
    from orchestrator.quiet import quiet

    outputs = []
    for i in range(2):
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        with quiet(tmp_path / "log.txt"):
            console.print(f"line {i}")
        console.print(f"after {i}")
        outputs.append(out.getvalue())
    assert "line 0" in outputs[0] and "after 0" in outputs[0]
    assert "line 1" in outputs[1] and "after 1" in outputs[1] and "after 1" not in outputs[0]
