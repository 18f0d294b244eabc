"""Result files: written atomically with a content digest, read back only if it still matches.

``atomic_path`` and ``write_text`` are ``figures.files``'s (one implementation for figures and
workflow: a temporary file in the target's folder, fsynced, renamed over it, with the umask's
ordinary mode): a failed or interrupted job never leaves a half-written file behind. ``write_json``,
``write_csv`` and ``write_jsonl`` (the results the claims are computed from) also write
``<file>.sha256`` (``sha256sum`` format) beside the file. ``read_json`` / ``read_csv`` /
``verify_result`` refuse a result whose bytes no longer match it -- edited by hand, truncated,
overwritten -- naming the file and the rule that rebuilds it (``replicate.workflow_guard``
publishes the rules); a file without a digest (written by hand, or before digests existed) is
read as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

from costmodel.cli import UsageError
from figures.files import atomic_path, current_umask, write_text
from figures.files import write_csv as _write_csv_plain

__all__ = ["atomic_path", "current_umask", "write_text", "write_csv", "write_json", "write_jsonl", "read_json",
           "read_csv", "verify_result", "verify_inputs", "ResultDigestError", "output_lock", "OutputLocked"]

DIGEST_SUFFIX = ".sha256"
RULES_ENV = "REPLICATE_OUTPUT_RULES"


class ResultDigestError(UsageError):
    """A result file that changed after it was written (or cannot be read); names it and its rule."""


def digest_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seal(path: str | os.PathLike) -> Path:
    """Write ``<path>.sha256`` for the file as it is now."""
    path = Path(path)
    write_text(digest_path(path), f"{_sha256(path)}  {path.name}\n")
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """NaN/inf are rejected: they are not JSON, and a result that holds one is a bug upstream."""
    return seal(write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_default,
                                            allow_nan=False) + "\n"))


def write_csv(path: str | os.PathLike, frame) -> Path:
    """A pandas DataFrame as CSV (no index), atomically, with its digest."""
    return seal(_write_csv_plain(path, frame))


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """JSON lines (one compact object per line; values JSON cannot hold written as their text),
    atomically, with its digest."""
    return seal(write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows)))


def rule_for(path: str | os.PathLike) -> Optional[str]:
    """The rule whose output ``path`` is (from the running workflow), or None outside one."""
    try:
        table = json.loads(os.environ.get(RULES_ENV, "") or "{}")
    except ValueError:
        return None
    names = {str(path), os.path.relpath(path)}
    for rule, patterns in table.items():
        if any(re.match(p, n) for p in patterns for n in names):
            return rule
    return None


def _rebuild_hint(path: Path) -> str:
    rule = rule_for(path)
    return (f"rule {rule} rebuilds it" if rule else "the rule that writes it rebuilds it") + \
        f": snakemake --cores all --forcerun {path}"


def verify_result(path: str | os.PathLike) -> Path:
    """``path`` if it exists and matches its digest (when it has one); else ResultDigestError."""
    path = Path(path)
    if not path.is_file():
        raise ResultDigestError(f"result {str(path)!r} is missing; {_rebuild_hint(path)}")
    side = digest_path(path)
    if side.is_file():
        recorded = side.read_text(encoding="utf-8", errors="replace").split()
        if not recorded or recorded[0] != _sha256(path):
            raise ResultDigestError(f"result {str(path)!r} does not match the content digest written with it "
                                    f"({side.name}): it was edited or damaged after it was computed and is not "
                                    f"used; {_rebuild_hint(path)}")
    return path


def verify_inputs(paths) -> list[Path]:
    """Check every file among ``paths`` (a rule's ``snakemake.input``, nested lists allowed) against
    its digest before a script hands it to a reader that does not check (figures, tables): the
    checked files; folders pass."""
    checked = []
    for p in paths:
        if isinstance(p, (list, tuple)):
            checked += verify_inputs(p)
        elif Path(p).is_file():
            checked.append(verify_result(p))
    return checked


def read_json(path: str | os.PathLike) -> Any:
    """A checked JSON result (see ``verify_result``); unreadable JSON is refused the same way."""
    path = verify_result(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ResultDigestError(f"result {str(path)!r} is not readable JSON ({exc}); {_rebuild_hint(path)}") from None


def read_csv(path: str | os.PathLike):
    """A checked CSV result as a pandas DataFrame."""
    import pandas as pd

    path = verify_result(path)
    try:
        return pd.read_csv(path)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise ResultDigestError(f"result {str(path)!r} is not a readable CSV ({exc}); {_rebuild_hint(path)}") from None


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
