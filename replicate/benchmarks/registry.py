"""The benchmark loaders: one explicit list, ``LOADERS`` (one instance per name of ``BENCHMARKS``).
``get_benchmark(name)``, ``load_benchmark(name, root, ...)`` and ``format_prompt(sample)`` look
names up here; nothing registers itself on import.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from .base import BENCHMARKS, Benchmark, MCQSample, MissingVideoError, MissingVideoWarning, SampleList, config_key
from .egoschema import EgoSchema
from .longvideobench import LongVideoBench
from .lvbench import LVBench
from .mlvu import MLVU
from .mvbench import MVBench
from .protocol_rules import prompt_for
from .validation import check_samples
from .videomme import VideoMME

LOADERS: tuple[Benchmark, ...] = (VideoMME(), MVBench(), EgoSchema(), LongVideoBench(), MLVU(), LVBench())


def build_registry(loaders) -> dict[str, Benchmark]:
    """name -> loader; a loader outside the Benchmark protocol, a name outside BENCHMARKS or a
    duplicate is an error naming it."""
    out: dict[str, Benchmark] = {}
    for loader in loaders:
        if not isinstance(loader, Benchmark):
            raise TypeError(f"{type(loader).__name__} does not implement the Benchmark protocol")
        if loader.name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {loader.name!r}; allowed: {', '.join(BENCHMARKS)}")
        if loader.name in out:
            raise ValueError(f"benchmark {loader.name!r} is listed twice")
        out[loader.name] = loader
    return out


_REGISTRY = build_registry(LOADERS)


def get_benchmark(name: str) -> Benchmark:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; allowed: {', '.join(sorted(_REGISTRY))}") from None


def format_prompt(sample: MCQSample, protocol=None, wrapper=None) -> str:
    """The text prompt (without the video) evaluation ``protocol`` (a name of
    ``replicate.benchmarks.protocols.PROTOCOLS``; default: the newest lmms-eval) gives ``sample`` under
    model ``wrapper`` (default: llava_onevision, the lmms-eval "default" prompt)."""
    if protocol is None and wrapper is None:
        return get_benchmark(sample.benchmark).format_prompt(sample)
    return prompt_for(sample, protocol, wrapper)


def _normalise_subset(bench: Benchmark, subset: str | Sequence[str] | None) -> frozenset[str] | None:
    if subset is None:
        return None
    chosen = frozenset([subset] if isinstance(subset, str) else [str(s) for s in subset])
    bad = sorted(chosen - set(bench.subsets))
    if not chosen or bad:
        allowed = ", ".join(bench.subsets) if bench.subsets else "(none: this benchmark has no subsets)"
        raise ValueError(f"{bench.name}: unknown subset {bad or sorted(chosen)!r}; allowed: {allowed}")
    return chosen


def load_benchmark(
    name: str,
    root: Path | str | None,
    *,
    limit: int | None = None,
    subset: str | Sequence[str] | None = None,
    strict: bool = False,
) -> SampleList:
    """Load benchmark ``name`` from its local copy at ``root`` (the value of ``paths.datasets.<name>``).

    Samples keep annotation order. A sample whose video is missing is skipped with one
    :class:`MissingVideoWarning` counting them (``strict=True`` raises :class:`MissingVideoError`
    instead); the skipped ids are in the result's ``skipped``. ``subset`` restricts to named
    sub-tasks / duration groups (see each benchmark's ``subsets``); ``limit`` keeps the first
    ``limit`` samples that survive, like lmms-eval's ``--limit``.
    """
    bench = get_benchmark(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    chosen = _normalise_subset(bench, subset)
    if root is None or not str(root).strip():  # config.yaml ships the key empty: "not set"
        raise FileNotFoundError(
            f"{name}: no dataset path given; set config key `{config_key(name)}` to the local copy of the benchmark"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{name}: dataset root {str(root)!r} does not exist or is not a directory; "
            f"set config key `{config_key(name)}` to the local copy of the benchmark"
        )
    samples, dropped = bench.read(root, chosen)
    check_samples(bench, root, samples, dropped)  # not empty, unique ids, options, video paths inside root
    kept: list[MCQSample] = []
    missing: list[MCQSample] = []
    for s in samples:
        (kept if Path(s.video_path).exists() else missing).append(s)
    if missing:
        first = ", ".join(str(s.video_path) for s in missing[:3])
        msg = (
            f"{name}: {len(missing)} of {len(samples)} samples have no video file under {str(root)!r} "
            f"(config key `{config_key(name)}`); first missing: {first}"
        )
        if strict:
            raise MissingVideoError(msg)
        warnings.warn(msg + "; these samples are skipped (strict=True raises instead)", MissingVideoWarning, stacklevel=2)
    skipped = list(dropped) + [(s.sample_id, f"missing video: {s.video_path}") for s in missing]
    if limit is not None:
        kept = kept[:limit]
    return SampleList(kept, skipped)
