"""Samples, the benchmark names and protocol, and the helpers the per-benchmark loaders share.

Every benchmark is a multiple-choice video QA set. A loader reads the LOCAL copy a user already has
(nothing is downloaded), in the layout of the Hugging Face datasets that lmms-eval uses, and turns
each question into an :class:`MCQSample`. What is common to all of them lives here: where the root
comes from (the config key ``paths.datasets.<name>``) and reading json / jsonl / parquet annotations;
``registry.load_benchmark`` checks that every video exists and applies ``limit`` and ``subset``.

Parquet is read through pandas, which needs pyarrow or fastparquet; without either, a parquet-only
copy gets an error that says so and names the json/jsonl alternative.
"""
from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .validation import LETTERS, BenchmarkRecordError, check_record, config_key  # noqa: F401 (re-exported)

BENCHMARKS: tuple[str, ...] = ("videomme", "mvbench", "egoschema", "longvideobench", "mlvu", "lvbench")
#: Suites a claim may name as one benchmark. STTS's 13 tasks are not listed in what was read
#: (docs/sources.md#tango-stts-results): the suite is the benchmarks with a loader here that Molmo2's
#: evaluation includes (config paper.suites overrides it)
SUITES: dict[str, list[str]] = {"stts-13tasks": ["mvbench", "egoschema", "longvideobench", "videomme", "mlvu"]}


@dataclass(frozen=True)
class MCQSample:
    """One multiple-choice question about one video.

    ``options`` hold the option texts without their letter prefix ("A. "); the prompt adds letters.
    ``video_path`` may be a directory of frames (MVBench's episodic_reasoning ships frames).
    ``meta`` carries the benchmark's category fields (duration, task type, ...) used by ``score``.
    """

    benchmark: str
    sample_id: str
    video_path: Path
    question: str
    options: list[str]
    answer_index: int
    meta: dict[str, Any] = field(default_factory=dict)
    #: where the question came from ("videomme test.parquet record 3"): named by validation errors
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; allowed: {', '.join(BENCHMARKS)}")
        if len(self.options) < 2:
            raise ValueError(f"{self.benchmark}/{self.sample_id}: needs >= 2 options, got {self.options!r}")
        if not 0 <= self.answer_index < len(self.options):
            raise ValueError(
                f"{self.benchmark}/{self.sample_id}: answer_index {self.answer_index} outside "
                f"0..{len(self.options) - 1}"
            )

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer_index]


class SampleList(list):
    """A list of :class:`MCQSample` that also remembers what the loader left out.

    ``skipped`` holds ``(sample_id, reason)`` pairs: ``"missing video: <path>"`` or ``"no public
    answer"`` (EgoSchema outside its 500-question subset). ``score`` reports their number.
    """

    def __init__(self, items: Iterable[MCQSample] = (), skipped: Iterable[tuple[str, str]] = ()):
        super().__init__(items)
        self.skipped: list[tuple[str, str]] = list(skipped)


class MissingVideoWarning(UserWarning):
    """Some samples were skipped because their video file is not on disk."""


class MissingVideoError(FileNotFoundError):
    """Strict loading found samples whose video file is not on disk."""


@runtime_checkable
class Benchmark(Protocol):
    """What a per-benchmark loader provides (listed in replicate.benchmarks.registry).

    ``read`` returns every answerable sample with its expected ``video_path`` (existence is checked
    by :func:`load_benchmark`) plus ``(sample_id, reason)`` for questions it had to drop.
    ``category_keys`` name the ``meta`` fields ``score`` breaks accuracy down by; the first one is
    the key of the macro average when ``headline == "macro"`` (MVBench and MLVU report the mean over
    their tasks).
    """

    name: str
    annotation_names: tuple[str, ...]
    subsets: tuple[str, ...]
    category_keys: tuple[str, ...]
    headline: str

    def read(self, root: Path, subset: frozenset[str] | None) -> tuple[list[MCQSample], list[tuple[str, str]]]:
        ...

    def format_prompt(self, sample: MCQSample) -> str:
        ...


# --------------------------------------------------------------------------------------------------
# helpers shared by the per-benchmark loaders


def find_annotations(root: Path, name: str, patterns: Sequence[str]) -> list[Path]:
    """Files matching the first of ``patterns`` (globs relative to ``root``) that matches anything.

    Patterns are tried in order so a preferred format (e.g. the HF parquet shards) wins over a
    fallback; all files of the winning pattern are returned sorted (sharded parquet).
    """
    unreadable: list[Path] = []
    for pat in patterns:
        hits = sorted(p for p in root.glob(pat) if p.is_file())
        if hits and hits[0].suffix.lower() == ".parquet" and not parquet_readable():
            unreadable = unreadable or hits  # prefer a json/jsonl copy if there is one
            continue
        if hits:
            return hits
    if unreadable:
        return unreadable  # read_records will say that parquet needs pyarrow
    raise FileNotFoundError(
        f"{name}: no annotation file under {str(root)!r} (config key `{config_key(name)}`); "
        f"expected one of: {', '.join(patterns)}"
    )


def parquet_readable() -> bool:
    """Whether pandas has a parquet engine here (pyarrow or fastparquet)."""
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet"))


def _jsonable(v: Any) -> Any:
    # pandas gives numpy arrays / scalars for list and int columns; loaders want plain Python.
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a .json (a list, or a dict of lists / of rows keyed by id), .jsonl or .parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):

        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BenchmarkRecordError(f"annotation file {str(path)!r} is not UTF-8 text") from None
        if not text.strip():
            raise BenchmarkRecordError(f"annotation file {str(path)!r} is empty; expected the benchmark's records")
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            try:
                rows.append(json.loads(line)) if line.strip() else None
            except json.JSONDecodeError as exc:
                raise BenchmarkRecordError(f"annotation file {str(path)!r} line {n} is not JSON ({exc.msg})") from None
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchmarkRecordError(f"annotation file {str(path)!r} is not JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if len(lists) == 1 and len(data) <= 3:  # {"data": [...]} style wrapper
                return lists[0]
            if all(isinstance(v, dict) for v in data.values()):  # {id: row}
                return [{"_key": k, **v} for k, v in data.items()]

        raise BenchmarkRecordError(f"annotation file {str(path)!r} holds a JSON {type(data).__name__}; expected a "
                                   f"list of records (or {{id: record}})")
    if suffix == ".parquet":
        try:
            import pandas as pd

            df = pd.read_parquet(path)
        except ImportError as e:
            raise ImportError(
                f"{path}: reading parquet needs pyarrow or fastparquet, neither is installed; "
                "install one, or convert the annotations to .json/.jsonl (e.g. on a machine with "
                "pyarrow: pandas.read_parquet(p).to_json(out, orient='records', lines=True))"
            ) from e
        except Exception as exc:  # pyarrow's errors are not ValueErrors; a damaged file is the user's
    
            raise BenchmarkRecordError(f"annotation file {str(path)!r} is not a readable parquet file "
                                       f"({type(exc).__name__}: {exc})") from None
        return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
    raise ValueError(f"{path}: unsupported annotation format {suffix!r}; allowed: .json, .jsonl, .parquet")


def first_existing(candidates: Sequence[Path]) -> Path:
    """The first candidate path that exists, else the first one (reported as missing later)."""
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def candidates_and_answer(row: dict[str, Any], where: str) -> tuple[list[str], int]:
    """Options and answer index of a record whose answer is given as the text of one candidate
    (MVBench, MLVU): the answer must be one of the candidates."""

    check_record(row, {"video": "relpath", "question": "text", "candidates": "options", "answer": "answer_text"}, where)
    options = [str(c) for c in row["candidates"]]
    if str(row["answer"]) not in options:
        raise ValueError(f"{where}: answer {row['answer']!r} is not one of the candidates {options}")
    return options, options.index(str(row["answer"]))


def strip_letter_prefix(option: str, index: int) -> str:
    """'A. text' / '(A) text' / 'A) text' -> 'text' when the letter is the option's own letter."""
    s = str(option).strip()
    letter = LETTERS[index]
    for pre in (f"{letter}. ", f"({letter}) ", f"{letter}) ", f"{letter}.", f"({letter})"):
        if s.startswith(pre):
            return s[len(pre):].strip()
    return s


def letter_index(letter: Any, n_options: int, where: str) -> int:
    """Index of an answer given as a letter ('B', '(B)') or an int / int-like string ('1')."""
    if isinstance(letter, bool):
        raise ValueError(f"{where}: answer {letter!r} is neither a letter nor an index")
    if isinstance(letter, int):
        idx = letter
    else:
        s = str(letter).strip().strip("()").strip(".").strip()
        if s.isdigit():
            idx = int(s)
        elif len(s) == 1 and s.upper() in LETTERS:
            idx = LETTERS.index(s.upper())
        else:
            raise ValueError(f"{where}: answer {letter!r} is neither a letter nor an index")
    if not 0 <= idx < n_options:
        raise ValueError(f"{where}: answer {letter!r} outside the {n_options} options")
    return idx


class IncompleteBenchmarkWarning(UserWarning):
    """A multi-task benchmark's local copy lacks some of its sub-tasks."""


def files_per_task(root: Path, name: str, tasks: Sequence[str], patterns, all_tasks: bool) -> dict[str, list[Path]]:
    """Annotation files of each sub-task (``patterns(task)`` gives its globs, tried in order).

    A sub-task asked for by name must exist; with ``all_tasks`` (no subset given) the ones present
    are loaded and the absent ones named in an :class:`IncompleteBenchmarkWarning`, since the
    benchmark's average then covers fewer tasks than the paper's.
    """
    found: dict[str, list[Path]] = {}
    absent = []
    for t in tasks:
        for pat in patterns(t):
            hits = sorted(p for p in root.glob(pat) if p.is_file())
            if hits:
                found[t] = hits
                break
        else:
            absent.append(t)
    expected = [patterns(t)[0] for t in absent]
    if not found or (absent and not all_tasks):
        raise FileNotFoundError(
            f"{name}: no annotation file under {str(root)!r} (config key `{config_key(name)}`) for "
            f"sub-task(s) {', '.join(absent)}; expected file names: {', '.join(expected)}"
        )
    if absent:
        warnings.warn(
            f"{name}: {len(absent)} of {len(tasks)} sub-tasks absent under {str(root)!r}: {', '.join(absent)}",
            IncompleteBenchmarkWarning,
            stacklevel=3,
        )
    return found


_OPTION_LINE = re.compile(r"^\(([A-Z])\)\s?(.*)$")


def split_embedded_options(question: str, where: str) -> tuple[str, list[str]]:
    """A question with its options written into it (lmms-eval's MLVU copy, LVBench) -> (stem,
    option texts): 'Question: q\\nOptions:\\n(A) x\\n(B) y' or 'q\\n(A) x\\n(B) y' -> ('q', ['x', 'y'])."""
    stem, options = [], []
    for line in question.splitlines():
        m = _OPTION_LINE.match(line.strip())
        if m:
            options.append(m.group(2).strip())
        elif not options and line.strip() not in ("Options:", "Option:"):
            stem.append(line)
    if len(options) < 2:
        raise ValueError(f"{where}: no '(A) ...' option lines in the question and no separate options field")
    text = "\n".join(stem).strip()
    return (text[len("Question:"):].strip() if text.startswith("Question:") else text), options
