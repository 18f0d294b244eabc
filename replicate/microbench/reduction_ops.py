"""Op-count benchmark of every method's reduction step: aten ops, host syncs with their call sites,
and wall time, on CPU, at the papers' shapes, on three kinds of video.

``python -m replicate.microbench.reduction_ops --out results/bench/reduction_ops.json``

On a GPU a reduction's own time is launch- and sync-bound: each aten op is a kernel launch
(~10-20 us) and each host sync a stall. Both are properties of the code, not of the device, so
they are counted here on CPU with :mod:`replicate.microbench.optrace` (a dispatch-level tracer; see
there what counts as a sync). Measured:

- every pre-LLM reduction (Tango, HoliTom stages I-II, PruneVid, DyCoke, VisionZip, FastVID) at
  LLaVA-OV-7B's shape (32 frames x 14x14 tokens x 3584) and LLaVA-Video-7B's (64 x 13x13 x 3584,
  grid newlines; Tango with its intra-LLM stage's pre-LLM ratio) at r = 0.10 and 0.25, Tango at
  Qwen2.5-VL-7B's (32 temporal groups x 16x16 x 3584), and STTS's selection and packing at
  Molmo2's (128 frames x 27x27 patches x 1152, 50 % of the groups pruned; the learned scorer's
  forward is model compute and not part of the span);
- each on three seeded video-like inputs (``replicate.microbench.videos``: no cut, a cut every 8 and
  every 2 frames);
- one prefill of a 28-layer tiny LLaVA-OV model with an inner-LLM plan: the ops and syncs the
  pruning runtime adds (sites in ``methods/runtime``) beside the decoder layers' own.

Wall times here are single-process CPU times of the untraced call (median of ``--repeats`` after
one warm-up) and are only indicative: the CPU comparison against the released code and main is
``python -m replicate.microbench.reduction_times``.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from replicate.microbench.methods import wall_times
from replicate.microbench.optrace import trace

try:
    from methods.primitives import cache_blocking
except ImportError:  # a checkout from before the switch (to count an earlier commit the same way)
    import contextlib

    def cache_blocking(enabled: bool):
        return contextlib.nullcontext()
from replicate.microbench.videos import INPUTS, VideoSpec, video_tokens
from costmodel.cli import Parser, entry_point, finite_float, integer, out_file

__all__ = ["SETTINGS", "Run", "runs", "reduction_fn", "measure", "prefill_overhead", "main"]

PRE_LLM_METHODS = ("tango", "holitom-wo-m", "prunevid", "dycoke", "visionzip", "fastvid")


@dataclass(frozen=True)
class Setting:
    spec: VideoSpec
    retentions: tuple[float, ...]
    methods: tuple[str, ...]
    options: dict = field(default_factory=dict)   # method -> extra options in this setting


#: the papers' settings (shapes of the released models' visual tokens)
SETTINGS: dict[str, Setting] = {
    "llava-ov-7b": Setting(VideoSpec(32, (14, 14), 3584, "one_token"), (0.10, 0.25), PRE_LLM_METHODS),
    "llava-video-7b": Setting(VideoSpec(64, (13, 13), 3584, "grid"), (0.10, 0.25), PRE_LLM_METHODS,
                              {"tango": {"intra_llm": True}}),
    "qwen2.5-vl-7b": Setting(VideoSpec(32, (16, 16), 3584, "none"), (0.10, 0.25), ("tango",)),
    "molmo2-8b": Setting(VideoSpec(128, (27, 27), 1152, "none"), (0.50,), ("stts",)),
}


@dataclass(frozen=True)
class Run:
    setting: str
    method: str
    retention: float
    options: dict

    @property
    def label(self) -> str:
        return f"{self.setting}/{self.method}/r={self.retention:g}"


def runs(settings=None, methods=None, retentions=None) -> list[Run]:
    """The (setting, method, retention) runs, optionally filtered."""
    out = []
    for sname, s in SETTINGS.items():
        if settings and sname not in settings:
            continue
        for m in s.methods:
            if methods and m not in methods:
                continue
            for r in s.retentions:
                if retentions and not any(math.isclose(r, x) for x in retentions):
                    continue
                out.append(Run(sname, m, r, dict(s.options.get(m, {}))))
    return out


def _stts_span(retention: float, group: int = 3) -> Callable:
    """STTS's selection and packing as the tower runs them (methods.adapters.vision_prune): the
    video-global group selection of ``1 - retention`` pruned groups, the patch mask, and the
    first-fit-decreasing packing with its block-diagonal mask. Scores: the frames' temporal novelty
    (a stand-in for the learned scorer's output, computed outside the span)."""
    from methods.stts import groups_to_patch_mask, novelty_targets, rearrange_tokens, select_groups

    def prepare(tokens):
        T, N, D = tokens.features.shape
        h, w = tokens.grid
        return novelty_targets(tokens.features.view(T, h, w, D), group)

    def span(tokens, scores):
        keep = select_groups(scores, round(1.0 - retention, 6))
        patch_keep = groups_to_patch_mask(keep, tokens.grid, group)
        return rearrange_tokens(tokens.features, patch_keep)

    return prepare, span


def reduction_fn(run: Run):
    """(prepare(tokens) -> extra or None, span(tokens, extra)) of one run."""
    if run.method == "stts":
        return _stts_span(run.retention)
    from methods.registry import get_method

    method = get_method(run.method, retention=run.retention, **run.options)
    return (lambda tokens: None), (lambda tokens, _: method.reduce(tokens))


def _kept(out) -> Optional[int]:
    if hasattr(out, "num_tokens"):
        return int(out.num_tokens)
    if hasattr(out, "keep_mask"):  # an STTS packing
        return int(out.keep_mask.sum())
    return None


def measure(run: Run, tokens, repeats: int, warmup: int = 0) -> dict:
    """Trace one run on one input (ops and syncs with sites, counted on the unblocked path a GPU
    runs; ``ops_cpu`` as this CPU runs it, with cache blocking) and time it untraced (the traces
    are the warm-up)."""
    prepare, span = reduction_fn(run)
    extra = prepare(tokens)
    try:
        with torch.inference_mode():
            with cache_blocking(False):
                out, tr = trace(span, tokens, extra)
            _, tr_cpu = trace(span, tokens, extra, sites=False)
            times = wall_times(lambda: span(tokens, extra), repeats, warmup)
    except Exception as e:  # a method that does not apply here (e.g. DyCoke below 25 %)
        from methods.types import NotApplicable

        if isinstance(e, NotApplicable):
            return {"not_applicable": str(e)}
        raise
    rec = tr.summary()
    rec.update(ops_cpu=tr_cpu.ops, syncs_cpu=tr_cpu.num_syncs, wall_s=statistics.median(times),
               wall_all_s=times, kept_tokens=_kept(out))
    info = getattr(out, "info", None) or {}
    if "segments" in info:
        rec["segments"] = len(info["segments"])
    return rec


def prefill_overhead(frames: int = 8, layers: int = 28) -> dict:
    """Ops and syncs of one prefill of a ``layers``-deep tiny LLaVA-OV model, unpruned and with the
    papers' inner-LLM plans, split into the pruning runtime's own (sites in methods/runtime/) and the
    rest (decoder layers, embeddings). The runtime's count is what a GPU pays per prefill beyond
    the model's kernels; syncs per layer are its syncs divided by the layer count."""
    from methods.adapters import LlavaOnevisionAdapter
    from methods.runtime import InnerPlan, InnerStage

    ad = LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=layers, image_size=56)
    px = torch.randn(frames, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    k = round(18 * layers / 28)
    plans = {
        "none": None,
        "tango-intra (K=18, keep 0.5, blend, released span)": InnerPlan(
            (InnerStage(k, 0.5),), scoring="last", merge="blend", blend_weight=0.6, span="visual",
            rounding="half_even"),
        "holitom stage III (K=18, merge 0.5, running-pairwise)": InnerPlan(
            (InnerStage(k, 0.5),), scoring="last", merge="running-pairwise"),
        "holitom stage III, mask mode": InnerPlan(
            (InnerStage(k, 0.5),), scoring="last", merge="running-pairwise", mode="mask"),
    }
    out = {"model": {"setting": "llava-onevision (tiny, random weights)", "llm_layers": layers,
                     "frames": frames}, "plans": {}}
    with torch.inference_mode():
        inputs = ad.build_inputs("What happens in the video?", ad.encode_video(px))
        out["model"]["prompt_tokens"] = int(inputs.length)
        for name, plan in plans.items():
            ad.prefill(inputs, plan)
            with cache_blocking(False):
                _, tr = trace(ad.prefill, inputs, plan)
            runtime_ops = sum(n for s, n in tr.by_site.items() if "methods/runtime/" in s.split(" <- ")[-1]
                              and not s.startswith("external:"))
            rec = tr.summary(top_sites=10)
            rec.update(runtime_ops=runtime_ops, syncs_per_layer=tr.num_syncs / layers,
                       runtime_syncs=sum(1 for s in tr.syncs if "methods/runtime/" in s.site),
                       decode_step=_decode_overhead(ad, inputs, plan, layers))
            out["plans"][name] = rec
    return out


def _decode_overhead(ad, inputs, plan, layers: int) -> dict:
    """Ops and syncs of one cached decode step after the prefill (the token id is read on the host
    before the step, as greedy decoding does)."""
    logits, res = ad.prefill(inputs, plan)
    token = int(logits.argmax())  # the last position's logits (vocab,)
    with cache_blocking(False):
        _, tr = trace(ad.decode_step, token, res, 0)
    rec = tr.summary(top_sites=5)
    rec["syncs_per_layer"] = tr.num_syncs / layers
    return rec


def run_all(selected: list[Run], inputs: dict, repeats: int, scale_dim: Optional[int] = None,
            progress: bool = True) -> dict:
    """Every run on every input; videos are built once per (setting, input) and freed after."""
    results: dict = {}
    by_setting: dict[str, list[Run]] = {}
    for r in selected:
        by_setting.setdefault(r.setting, []).append(r)
    for sname, rs in by_setting.items():
        spec = SETTINGS[sname].spec
        if scale_dim:
            spec = VideoSpec(spec.frames, spec.grid, scale_dim, spec.newline_policy)
        for iname, cut in inputs.items():
            tokens = video_tokens(spec, cut, seed=0)
            for r in rs:
                t0 = time.perf_counter()
                rec = measure(r, tokens, repeats)
                results.setdefault(r.label, {"setting": sname, "method": r.method, "retention": r.retention,
                                             "options": r.options, "shape": [spec.frames, *spec.grid, spec.dim],
                                             "inputs": {}})["inputs"][iname] = rec
                if progress:
                    msg = rec.get("not_applicable") or (f"{rec['ops']} ops, {rec['syncs']} syncs, "
                                                       f"{rec['wall_s'] * 1e3:.1f} ms")
                    print(f"[{time.perf_counter() - t0:5.1f} s] {r.label} {iname}: {msg}", file=sys.stderr, flush=True)
            del tokens
    return results


@entry_point("python -m replicate.microbench.reduction_ops")
def main(argv=None) -> int:
    p = Parser(prog="python -m replicate.microbench.reduction_ops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=out_file, help="output JSON path")
    p.add_argument("--settings", nargs="*", choices=sorted(SETTINGS), help="subset of settings (default all)")
    p.add_argument("--methods", nargs="*", help="subset of methods (default all of each setting)")
    p.add_argument("--retentions", nargs="*", type=finite_float(0, 1, lo_open=True), help="subset of retentions")
    p.add_argument("--inputs", nargs="*", choices=sorted(INPUTS), help="subset of inputs (default all)")
    p.add_argument("--repeats", type=integer(1, 1000), default=3, help="untraced timed calls per run (median)")
    p.add_argument("--threads", type=integer(1, 1024), default=2, help="torch intra-op threads")
    p.add_argument("--dim", type=integer(8, 16384), default=None,
                   help="feature width instead of each setting's (op counts do not depend on it; for quick runs)")
    p.add_argument("--no-prefill", action="store_true", help="skip the prefill overhead measurement")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error(f"--repeats must be >= 1, got {a.repeats}")
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.dim is not None and (a.dim < 8 or a.dim % 2):
        p.error(f"--dim must be an even number >= 8, got {a.dim}")
    all_methods = {m for s in SETTINGS.values() for m in s.methods}
    bad = sorted(set(a.methods or ()) - all_methods)
    if bad:
        p.error(f"unknown method(s) {bad}; allowed: {sorted(all_methods)}")
    selected = runs(a.settings, a.methods, a.retentions)
    if not selected:
        p.error("no run matches the given --settings / --methods / --retentions")
    torch.set_num_threads(a.threads)
    inputs = {k: v for k, v in INPUTS.items() if not a.inputs or k in a.inputs}
    from replicate.microbench.methods import bench_provenance
    from replicate.io import write_json

    load0 = os.getloadavg()
    result = {
        "what": "aten ops, host syncs (with call sites) and CPU wall time of each method's reduction step",
        "inputs": {k: ("one shot" if v is None else f"a cut every {v} frames") for k, v in inputs.items()},
        "runs": run_all(selected, inputs, a.repeats, a.dim),
        "prefill": None if a.no_prefill else prefill_overhead(),
        "threads": a.threads, "repeats": a.repeats, "loadavg_before": list(load0),
        "loadavg_after": list(os.getloadavg()), "provenance": bench_provenance(),
    }
    write_json(a.out, result)
    for label, rec in result["runs"].items():
        cells = [f"{i}: " + (f"{v['ops']} ops / {v['syncs']} syncs" if "ops" in v else "n/a")
                 for i, v in rec["inputs"].items()]
        print(f"{label:45s} " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
