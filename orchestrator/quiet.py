"""A clean console for long commands: Ray's, Tune's and DeepSpeed's output (banners, status
tables, forwarded worker logs, warnings) goes to a log file; dlkdd's own console keeps the
terminal. Both levels are redirected: Python's streams (Ray's log printer, warnings) and
the process's file descriptors 1 and 2 (C++ logs, child processes that inherit them)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.progress import console


def log_file(storage: str, command: str) -> Path:
    """Where a command's logs go: under a local storage folder; in ./dlkdd_logs when the
    storage is a URI (s3://), which a log appended line by line cannot be written to."""
    folder = Path("dlkdd_logs") if "://" in storage else Path(storage) / "logs"
    return folder.resolve() / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}.log"


@contextmanager
def quiet(log_path: Path, verbose: bool = False) -> Iterator[None]:
    """Everything but dlkdd's console goes to `log_path` (appended) while the block runs;
    with `verbose`, nothing is redirected. An error leaving the block is printed by the
    caller after the streams are back, so it surfaces in full."""
    if verbose:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"logs of Ray, Tune and DeepSpeed: {log_path} (--verbose shows them here)",
                  soft_wrap=True)  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved = sys.stdout, sys.stderr
    terminal = os.fdopen(os.dup(saved_fds[0]), "w", buffering=1) if _is_fd(saved[0]) else None
    with log_path.open("a", buffering=1) as log:
        try:
            # dlkdd's console writes where stdout went before (a terminal, a pipe, or the
            # buffer a test runner put in sys.stdout)
            console.file = terminal or saved[0]
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
            yield
        finally:
            log.flush()
            sys.stdout, sys.stderr = saved
            console.file = None  # back to following sys.stdout, as progress.py made it
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            if terminal:
                terminal.close()


def _is_fd(stream) -> bool:
    """Whether `stream` writes to file descriptor 1 (and so would follow the redirect)."""
    try:
        return stream.fileno() == 1
    except (AttributeError, OSError, ValueError):
        return False
