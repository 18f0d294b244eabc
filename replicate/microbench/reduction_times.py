"""CPU time of every method's reduction step on several kinds of video, and Tango against a
reference of the released code, in one process.

``python -m replicate.microbench.reduction_times --out docs/measured/reduction_times_<commit>.json``

At LLaVA-OV-7B's shape (32 frames x 14x14 tokens x 3584, fp32) and r = 0.10 (DyCoke at its lowest
retention, 0.25), on the video-like inputs of ``replicate.microbench.videos`` (no cut, a cut every 8
and every 2 frames) plus ``one-segment`` (one 32-frame shot where a third of the positions
flicker: HoliTom's segmentation keeps all 32 frames together, so Tango merges one large pool, the
case issue 26 timed), each method is timed ``--repeats`` times after ``--warmup`` calls: wall and
process CPU seconds, median. Tango alternates with ``replicate.microbench.tango_reference.released_reference``
(the project's reference of the released pre-LLM step) call by call, and their outputs are
compared (kept indices equal, features within ``--atol``).

The machine's load average is recorded before and after each method: on a shared machine the wall
time measures the scheduler's share as much as the code, the CPU time less so. ``--against DIR``
compares with an earlier commit in the same process: ``DIR`` holds that commit's ``methods/`` and
``costmodel/`` (``git archive <commit> methods costmodel | tar -x -C DIR``); its methods are
imported under their own names and swapped into ``sys.modules`` around each of their calls (so
their function-level imports resolve to their own tree), and the two checkouts' calls alternate
(issue 26: "no method slower than today", today = ``ab7bbe8``). Whether their outputs agree is
recorded too (they need not: issue 24 changed some methods' defaults on purpose).

Each timing records the minor page faults of the call. Under glibc's default a freed block of a
few MB or more goes back to the system, and the next fresh tensor page-faults every 4 KB of it
anew: on this workload that costs as much as the arithmetic, and it depends on the allocation
history of the process, so the same code can time 30 % apart between runs. ``--allocator
keep-freed`` makes glibc keep freed memory for reuse (as jemalloc, tcmalloc or a GPU's caching
allocator do) and so times the computation alone; run both to see how much of a speed-up is
allocation.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from replicate.microbench.videos import INPUTS, VideoSpec, video_tokens
from costmodel.cli import Parser, entry_point, existing_dir, finite_float, integer, out_file

METHODS = {"tango": {"retention": 0.10}, "holitom-wo-m": {"retention": 0.10}, "prunevid": {"retention": 0.10},
           "dycoke": {"retention": 0.25}, "visionzip": {"retention": 0.10}, "fastvid": {"retention": 0.10}}
ONE_SEGMENT = "one-segment"


def one_segment_tokens(spec: VideoSpec, seed: int = 0):
    """One shot, no objects: every position a background token plus per-frame noise of one of three
    levels (0.2: static at any tau; 0.55: static at 0.65 but not at 0.8; 3.0: flickering), so the
    segmentation keeps the whole video in one segment and about two thirds of the positions are
    dynamic inside it (the released static mask uses tau 0.8)."""
    from methods.types import VideoTokens

    g = torch.Generator().manual_seed(seed)
    F, (h, w), D = spec.frames, spec.grid, spec.dim
    N = h * w
    level = torch.tensor([0.2, 0.55, 3.0])[torch.randint(0, 3, (N,), generator=g)]
    x = torch.randn(N, D, generator=g) + level[:, None] * torch.randn(F, N, D, generator=g)
    sal = torch.softmax(2.0 * torch.randn(F, N, generator=g), -1)
    keys = x @ (torch.randn(D, 72, generator=g) / D ** 0.5)
    return VideoTokens(features=x, grid=spec.grid, timestamps=torch.arange(F, dtype=torch.float32) * 0.5,
                       saliency={"map_head_attn": sal, "vit_attn_received": sal, "vit_global_query_attn": sal},
                       global_features=x.mean(1) @ torch.randn(D, 1152, generator=g) / D ** 0.5, keys=keys,
                       newline_policy=spec.newline_policy)


def _timed(fn) -> tuple[float, float, int]:
    """(wall s, process CPU s, minor page faults) of one call."""
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return w, c, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


def _stats(samples: list[tuple[float, float, int]]) -> dict:
    walls, cpus, faults = ([s[i] for s in samples] for i in range(3))
    return {"median_wall_s": statistics.median(walls), "median_cpu_s": statistics.median(cpus),
            "min_wall_s": min(walls), "median_page_faults": statistics.median(faults), "wall_s": walls,
            "cpu_s": cpus}


#: ``--gemm``: this checkout's CPU GEMMs through oneDNN, or through torch.matmul
GEMMS = ("onednn", "matmul")
#: ``--allocator``: glibc's own behaviour, or freed memory kept in the heap for reuse
ALLOCATORS = ("default", "keep-freed")
#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> str:
    """Make glibc keep freed memory for reuse (no ``mmap`` for large blocks, no trimming of the
    heap), for the rest of the process: a fresh tensor then reuses pages already mapped instead of
    page-faulting each 4 KB anew, the behaviour of a caching allocator (jemalloc, tcmalloc, a GPU's
    caching allocator). Returns what was set; ValueError where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2 ** 31 - 1)) == 1
    except (OSError, AttributeError):
        ok = False
    if not ok:
        raise ValueError("--allocator keep-freed needs glibc's mallopt (Linux); use --allocator default here")
    return "glibc mallopt: M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1 (freed memory kept for reuse)"


_PACKAGES = ("methods", "costmodel")


def _own_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k.split(".")[0] in _PACKAGES}


@contextlib.contextmanager
def _modules(side: dict):
    """``side``'s ``methods``/``costmodel`` modules in ``sys.modules`` inside the block; modules the
    block imports join ``side`` (updated in place) and this checkout's are put back after it."""
    mine = _own_modules()
    for k in mine:
        del sys.modules[k]
    sys.modules.update(side)
    try:
        yield
    finally:
        side.update(_own_modules())
        for k in _own_modules():
            del sys.modules[k]
        sys.modules.update(mine)


class Checkout:
    """An earlier commit's ``methods`` (a folder with its ``methods/`` and ``costmodel/``), imported
    in this process beside this checkout's."""

    def __init__(self, tree: Path):
        self.tree = Path(tree).resolve()
        if not (self.tree / "methods" / "__init__.py").is_file():
            raise ValueError(f"{self.tree} has no methods/__init__.py (git archive <commit> methods costmodel)")
        self.modules: dict = {}
        with _modules(self.modules):
            sys.path.insert(0, str(self.tree))
            try:
                import methods
                import methods.registry  # noqa: F401  (the lazy registry the methods are built from)
            finally:
                sys.path.remove(str(self.tree))
        where = Path(self.modules["methods"].__file__).resolve()
        if not where.is_relative_to(self.tree):
            raise ValueError(f"importing methods from {self.tree} gave {where}")

    def call(self, fn, *args, **kwargs):
        with _modules(self.modules):
            return fn(*args, **kwargs)

    def method(self, name: str, opts: dict):
        return self.call(lambda: self.modules["methods.registry"].get_method(name, **opts))


def _same_output(a, b) -> dict:
    same = a.source.shape == b.source.shape and torch.equal(a.source, b.source)
    diff = float((a.features.float() - b.features.float()).abs().max()) if same and a.features.numel() else None
    return {"indices_equal": same, "max_abs_feature_diff": diff}


def time_methods(tokens, methods: dict, repeats: int, warmup: int, against: Optional[Checkout] = None) -> dict:
    """Median wall / CPU time of each method's ``reduce`` on ``tokens`` (methods one after another);
    with ``against``, that checkout's ``reduce`` alternates with this one's call by call."""
    from methods.registry import get_method

    out = {}
    for name, opts in methods.items():
        m = get_method(name, **opts)
        old = against.method(name, opts) if against else None
        load0 = os.getloadavg()[0]
        mine, theirs = [], []
        with torch.inference_mode():
            for _ in range(warmup):
                m.reduce(tokens)
                if old:
                    against.call(old.reduce, tokens)
            for _ in range(repeats):
                mine.append(_timed(lambda: m.reduce(tokens)))
                if old:
                    with _modules(against.modules):
                        theirs.append(_timed(lambda: old.reduce(tokens)))
            check = _same_output(m.reduce(tokens), against.call(old.reduce, tokens)) if old else None
        out[name] = {**_stats(mine), "options": opts, "loadavg_before": load0, "loadavg_after": os.getloadavg()[0]}
        if old:
            t = _stats(theirs)
            out[name]["against"] = {**t, "speedup_wall": t["median_wall_s"] / out[name]["median_wall_s"],
                                    "speedup_cpu": t["median_cpu_s"] / out[name]["median_cpu_s"], "output": check}
    return out


def tango_vs_reference(tokens, repeats: int, warmup: int, atol: float) -> dict:
    """Tango and the released reference alternately, and the check that their outputs agree."""
    from methods.tango import TangoConfig, resolve_sinks, tango_reduce
    from replicate.microbench.tango_reference import released_reference

    cfg = TangoConfig(retention=0.10, fidelity="released")
    sinks = resolve_sinks(cfg, tokens)
    ours = lambda: tango_reduce(tokens, cfg)
    ref = lambda: released_reference(tokens.features, tokens.require("map_head_attn"), tokens.times(),
                                     tokens.grid, cfg, sinks)
    load0 = os.getloadavg()[0]
    with torch.inference_mode():
        red, (src, feats) = ours(), ref()
        for _ in range(max(warmup - 1, 0)):
            ours(), ref()
        a, b = [], []
        for _ in range(repeats):
            a.append(_timed(ours))
            b.append(_timed(ref))
    same = torch.equal(red.source, src)
    diff = float((red.features.float() - feats).abs().max()) if same else float("inf")
    t_ours, t_ref = _stats(a), _stats(b)
    return {"tango": t_ours, "reference": t_ref,
            "speedup_wall": t_ref["median_wall_s"] / t_ours["median_wall_s"],
            "speedup_cpu": t_ref["median_cpu_s"] / t_ours["median_cpu_s"],
            "output_check": {"indices_equal": same, "max_abs_feature_diff": diff, "atol": atol,
                             "identical": bool(same and diff <= atol), "kept": red.num_tokens,
                             "segments": len(red.info["segments"])},
            "loadavg_before": load0, "loadavg_after": os.getloadavg()[0]}


def _checkout() -> dict:
    import methods

    root = Path(methods.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"methods_root": str(root), "git_commit": commit}


@entry_point("python -m replicate.microbench.reduction_times")
def main(argv=None) -> int:
    p = Parser(prog="python -m replicate.microbench.reduction_times", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=out_file, help="output JSON path")
    p.add_argument("--inputs", nargs="*", choices=sorted([*INPUTS, ONE_SEGMENT]), help="default: all")
    p.add_argument("--methods", nargs="*", choices=sorted(METHODS), help="default: all")
    p.add_argument("--no-reference", action="store_true", help="skip Tango against the released reference")
    p.add_argument("--repeats", type=integer(1, 1000), default=5)
    p.add_argument("--warmup", type=integer(0, 1000), default=1)
    p.add_argument("--threads", type=integer(1, 1024), default=2)
    p.add_argument("--dim", type=integer(8, 16384), default=3584)
    p.add_argument("--atol", type=finite_float(0), default=1e-5)
    p.add_argument("--label", default="", help="a name for this checkout in the JSON (e.g. main, branch)")
    p.add_argument("--against", type=existing_dir, default=None,
                   help="an earlier commit's tree (its methods/ and costmodel/) to time in the same process")
    p.add_argument("--allocator", choices=ALLOCATORS, default="default",
                   help="'keep-freed': glibc keeps freed memory for reuse, so the times leave out the page "
                        "faults of fresh blocks (default: the C library's own behaviour)")
    p.add_argument("--gemm", choices=GEMMS, default="onednn",
                   help="this checkout's CPU GEMMs: oneDNN's kernel (default) or torch.matmul's (MKL)")
    a = p.parse_args(argv)
    for name in ("repeats", "threads", "dim"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        p.error(f"--warmup must be >= 0, got {a.warmup}")
    try:
        against = Checkout(a.against) if a.against else None
    except ValueError as e:
        p.error(f"--against: {e}")
    allocator = "C library default"
    if a.allocator == "keep-freed":
        try:
            allocator = keep_freed_memory()
        except ValueError as e:
            p.error(str(e))
    from methods.primitives import onednn_gemm

    torch.set_num_threads(a.threads)
    spec = VideoSpec(32, (14, 14), a.dim)
    inputs = a.inputs or [*INPUTS, ONE_SEGMENT]
    methods = {m: METHODS[m] for m in (a.methods or METHODS)}
    result = {"what": "CPU time of each reduction (median after warm-up) and Tango vs the released reference",
              "shape": [spec.frames, *spec.grid, spec.dim], "threads": a.threads, "repeats": a.repeats,
              "warmup": a.warmup, "label": a.label, "checkout": _checkout(), "cpu_count": os.cpu_count(),
              "allocator": allocator, "gemm": a.gemm,
              "torch": torch.__version__, "inputs": {},
              "against": None if against is None else {"tree": str(against.tree)}}
    for name in inputs:
        tokens = one_segment_tokens(spec) if name == ONE_SEGMENT else video_tokens(spec, INPUTS[name], seed=0)
        with onednn_gemm(a.gemm == "onednn"):   # this checkout's calls only: the others have their own modules
            rec = {"methods": time_methods(tokens, methods, a.repeats, a.warmup, against)}
            if not a.no_reference:
                rec["tango_vs_reference"] = tango_vs_reference(tokens, a.repeats, a.warmup, a.atol)
        result["inputs"][name] = rec
        line = ", ".join(f"{m} {v['median_wall_s'] * 1e3:.1f} ms" + (
            f" ({v['against']['median_wall_s'] * 1e3:.1f} ms against: {v['against']['speedup_wall']:.2f}x)"
            if "against" in v else "") for m, v in rec["methods"].items())
        ref = rec.get("tango_vs_reference")
        if ref:
            line += (f"; tango vs reference {ref['speedup_wall']:.2f}x wall, {ref['speedup_cpu']:.2f}x cpu "
                     f"({'identical' if ref['output_check']['identical'] else 'OUTPUT DIFFERS'})")
        print(f"{name}: {line}", flush=True)
        del tokens
    from replicate.io import write_json

    write_json(a.out, result)
    bad = [n for n, r in result["inputs"].items()
           if "tango_vs_reference" in r and not r["tango_vs_reference"]["output_check"]["identical"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
