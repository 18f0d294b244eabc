"""Atomic result writing: a failed or interrupted job never leaves a half-written file behind.

Every writer goes to a temporary file in the destination directory, flushes and fsyncs it, then
``os.replace``s it over the target (atomic on POSIX within one filesystem).
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


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


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """NaN/inf are rejected: they are not JSON, and a result that holds one is a bug upstream."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_default,
                                       allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically (no index)."""
    return write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class OutputLocked(RuntimeError):
    """Another live process holds the lock of this output folder."""


@contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``<parent>/.<folder>.lock`` while writing ``folder``.

    A trainer left running after Snakemake was killed (SIGKILL does not reach the job's children)
    keeps its lock, so a rerun after ``--unlock`` fails naming the folder and the holder's pid
    instead of starting a second writer into the same folder. The kernel drops the lock when the
    holder dies, however it dies, so a stale lock file never blocks anything."""
    import fcntl

    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    fh = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise OutputLocked(f"output folder {str(target)!r} is being written by another process "
                               f"(pid {holder}, lock {str(lock_path)!r}); stop it or wait for it") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield target
    finally:
        fh.close()
