"""The one check every benchmark record and every loaded benchmark passes before a cell runs.

A damaged annotation file used to give a result: an empty list became a cell with n = 0, options
given as one string were split into one option per character, a video id with ``../`` read a file
outside the dataset root, a directory named like a video failed later without saying which
record. Two checks, both raising :class:`BenchmarkRecordError` that names the file, the record
index and id, the field and what is allowed:

- :func:`check_record` (each loader calls it on every raw record, with its :data:`RECORD_FIELDS`
  style declaration ``{field: kind}``): the fields are present and of their kind;
- :func:`check_samples` (``registry.load_benchmark`` calls it on what a loader returns): the
  benchmark is not empty, ids are unique, each question has the benchmark's number of options and
  each video path, symlinks resolved, lies inside the dataset root and is a file (a folder of
  frames only where the benchmark ships frames).
"""
from __future__ import annotations

import math
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Mapping, Sequence

from costmodel.cli import UsageError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def config_key(name: str) -> str:
    """The config key that holds the local root of benchmark ``name``."""
    return f"paths.datasets.{name}"


#: what each field kind accepts (the ``allowed`` part of an error)
KINDS = {
    "text": "a non-empty string",
    "id": "a string or an integer",
    "options": "a list of option strings",
    "letter": "an option letter (A, B, ...) or its index",
    "index": "an integer option index",
    "answer_text": "the text of one of the candidates",
    "relpath": "a path relative to the dataset root (no '..', not absolute)",
    "records": "a list of question records",
}


class BenchmarkRecordError(UsageError):
    """A benchmark record or layout that cannot be used; the message names the file, the record,
    the field and what is allowed."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scalar(v: Any) -> bool:
    return isinstance(v, str) or _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def _kind_ok(kind: str, v: Any) -> bool:
    if kind == "text":
        return isinstance(v, str) and v.strip() != ""
    if kind == "id":
        return (isinstance(v, str) and v.strip() != "") or _is_int(v)
    if kind == "options":
        return isinstance(v, (list, tuple)) and all(_scalar(o) and str(o).strip() != "" for o in v)
    if kind == "letter":
        s = str(v).strip().strip("()").strip(".").strip() if isinstance(v, str) else None
        return _is_int(v) or (s is not None and (s.isdigit() or (len(s) == 1 and s.upper() in LETTERS)))
    if kind == "index":
        return _is_int(v) or (isinstance(v, str) and v.strip().isdigit())
    if kind == "answer_text":
        return _scalar(v)
    if kind == "relpath":
        return isinstance(v, str) and safe_relpath(v)
    if kind == "records":
        return isinstance(v, list) and all(isinstance(r, Mapping) for r in v)
    raise ValueError(f"unknown field kind {kind!r}")


def safe_relpath(text: str) -> bool:
    """Whether ``text`` is a non-empty relative path that cannot climb out of its root."""
    if not text.strip() or "\x00" in text:
        return False
    for flavour in (PurePosixPath(text), PureWindowsPath(text)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            return False
    return True


def describe(where: str, row: Any, id_field: str | None) -> str:
    ident = row.get(id_field) if isinstance(row, Mapping) and id_field else None
    return f"{where}" + (f" (id {ident!r})" if ident is not None else "")


def check_record(row: Any, fields: Mapping[str, str], where: str, *, id_field: str | None = None,
                 optional: Sequence[str] = ()) -> None:
    """``row`` is a mapping with every field of ``fields`` (``optional`` ones may be absent) of its
    kind (:data:`KINDS`); ``where`` names the file and the record index."""
    if not isinstance(row, Mapping):
        raise BenchmarkRecordError(f"{where}: the record is a {type(row).__name__}, expected a mapping with "
                                   f"fields {sorted(fields)}")
    for name, kind in fields.items():
        if name not in row or row[name] is None:
            if name in optional:
                continue
            raise BenchmarkRecordError(f"{describe(where, row, id_field)}: field {name!r} is missing; "
                                       f"expected {KINDS[kind]} (the record has {sorted(row)})")
        if not _kind_ok(kind, row[name]):
            raise BenchmarkRecordError(f"{describe(where, row, id_field)}: field {name!r} is {row[name]!r}; "
                                       f"allowed: {KINDS[kind]}")


# ----------------------------------------------------------------------------------- a loaded benchmark
def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check_sample(sample, root: Path, option_counts: tuple[int, int], frame_kinds: frozenset = frozenset()) -> None:
    """One loaded question: its option count and its video path (inside the root, a file)."""
    where = f"{sample.source or sample.benchmark} (id {sample.sample_id!r})"
    lo, hi = option_counts
    if not lo <= len(sample.options) <= hi:
        allowed = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise BenchmarkRecordError(f"{where}: {len(sample.options)} options {sample.options!r}; {sample.benchmark} "
                                   f"questions have {allowed}")
    video = Path(sample.video_path)
    if not _inside(video, root):
        raise BenchmarkRecordError(f"{where}: video path {str(video)!r} resolves to {str(video.resolve())!r}, "
                                   f"outside the dataset root {str(root.resolve())!r} (config key "
                                   f"{config_key(sample.benchmark)}); '..', absolute paths and symlinks leaving "
                                   f"the root are refused")
    if video.is_dir() and sample.meta.get("video_kind") not in frame_kinds:
        raise BenchmarkRecordError(f"{where}: video path {str(video)!r} is a directory; expected a video file")


def check_samples(bench, root: Path, samples: list, dropped: list, files: Sequence[Path] = ()) -> None:
    """The benchmark as loaded: not empty, ids unique, every question checked (:func:`check_sample`)."""
    name = bench.name
    if not samples:
        why = (f"all {len(dropped)} questions were left out (e.g. {dropped[0][0]!r}: {dropped[0][1]})" if dropped
               else "the annotation files hold no question")
        raise BenchmarkRecordError(f"{name}: no usable question under {str(root)!r} (config key {config_key(name)}): "
                                   f"{why}; an empty benchmark would give a cell with n = 0")
    seen: dict[str, Any] = {}
    for s in samples:
        if s.sample_id in seen:
            raise BenchmarkRecordError(f"{name}: sample id {s.sample_id!r} appears twice ({seen[s.sample_id] or name} "
                                       f"and {s.source or name}); ids must be unique")
        seen[s.sample_id] = s.source
    counts = getattr(bench, "option_counts", (2, len(LETTERS)))
    frames = frozenset(getattr(bench, "frame_kinds", ()))
    for s in samples:
        check_sample(s, root, counts, frames)
