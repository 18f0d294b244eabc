"""Atomic result writing: a failed or interrupted job never leaves a half-written file behind.

``atomic_path``, ``write_text`` and ``write_csv`` are ``figures.files``'s (one implementation for
figures and workflow: a temporary file in the target's folder, fsynced, renamed over it, with the
umask's ordinary mode); ``write_json`` and ``write_jsonl`` add the workflow's JSON conventions.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from figures.files import atomic_path, current_umask, write_csv, write_text

__all__ = ["atomic_path", "current_umask", "write_text", "write_csv", "write_json", "write_jsonl", "output_lock",
           "OutputLocked"]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """NaN/inf are rejected: they are not JSON, and a result that holds one is a bug upstream."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_default,
                                       allow_nan=False) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """JSON lines (one compact object per line; values JSON cannot hold written as their text)."""
    return write_text(path, "".join(json.dumps(row, default=str) + "\n" for row in rows))


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
