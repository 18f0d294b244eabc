"""Atomic file writing: a failed or interrupted job never leaves a half-written file behind.

Every writer goes to a temporary file in the destination directory, flushes and fsyncs it, then
``os.replace``s it over the target (atomic on POSIX within one filesystem). It lives here, at the
bottom of the package graph, so that figures and the workflow (``replicate.io``) share one
implementation and ``figures`` imports nothing from ``replicate``.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix,
                               dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a result file is an ordinary file
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process umask, read without changing it (os.umask would race with Snakemake's job threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically (no index)."""
    return write_text(path, frame.to_csv(index=False, lineterminator="\n"))


# ---------------------------------------------------------------- notebooks
#: a directory holding one of these is where a run's relative paths (results/...) resolve
RUN_MARKERS = ("results", "Snakefile")


def run_directory(start: str | os.PathLike | None = None) -> Path:
    """The run directory a notebook reads ``results/...`` from: ``start`` (the working directory) or
    the nearest parent holding ``results/`` or a ``Snakefile``. ``jupyter nbconvert --execute
    figures/x.ipynb`` starts the kernel in ``figures/``; papermill in the run directory."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if any((d / m).exists() for m in RUN_MARKERS):
            return d
    return here


def require(*paths: str | os.PathLike) -> None:
    """FileNotFoundError naming the missing inputs and the Snakemake command that writes them."""
    missing = [str(p) for p in paths if p and not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not found under {Path.cwd()}: this notebook shows what the workflow wrote; "
            f"build it first, from the repository root: snakemake --cores all {' '.join(missing)}")
