"""Micro-benchmarks of the methods package (not a test; numbers go to JSON with provenance).

``python -m replicate.microbench.methods --out results/bench/methods.json`` times

1. every registered pre-LLM reduction on a full-size LLaVA-OV video: F=32 frames x N=196 tokens x
   D=3584 fp32 on CPU, random features and saliency, median of ``--repeats`` after one warm-up;
2. the adapter's overhead with no pruning against the plain HF forward on a tiny model: the LLM
   prefill (our decoder-layer loop vs ``model(inputs_embeds=...)``) and the whole path (vision +
   LLM, with saliency signals off) vs ``model(input_ids, pixel_values_videos)``. Target < 5 %.
3. ``--inner-stage``: one inner-LLM ranking pass at full size (LLaVA-OV-7B's attention width:
   28 heads, 4 KV heads, head dim 128; 6272 visual + 101 text tokens, random weights, fp32): the
   last token's scores (one q row, k of every token; what FastV and PDrop compute per stage, at
   either rank layer) beside the all-rows scores (q of every token), and the whole prefill of a
   2-layer LLM of that width (MLP width 3584: the MLP is not what a stage changes) with PDrop's
   default plan (stage at layer 1, int/round of 0.5) and without a plan.
4. ``--stts-steps``: STTS's pure steps at Molmo2 size (64 frames x 27 x 27 patches, 1152 wide, 3 x 3
   groups, topk 0.5): the attention bias, the video-global selection and the packing.
Only APIs that predate their ``fidelity`` option are used, so the same file times an older commit
(``PYTHONPATH=<checkout> python <this file>``) with its own defaults.
5. ``--fidelity-pairs``: each method that has a ``fidelity`` option, ``released`` against ``project``
   (this project's earlier reading, the code path of the commits before issue 24), timed alternately
   in one process at the sizes above (FastVID and VisionZip at 10 %, STTS's bias, selection and
   packing), so load drift on a shared machine hits both equally.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from costmodel.cli import Parser, entry_point, integer, out_file

from replicate.io import write_json

DEFAULT_METHODS = {
    "visionzip": {"retention": 0.1},
    "random": {"retention": 0.1},
    "uniform-pool": {"retention": 0.1},
    "holitom-wo-m": {"retention": 0.1},
    "tango": {"retention": 0.1},
    "fastvid": {"retention": 0.1},
}


def wall_times(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn, repeats: int, warmup: int = 1) -> dict:
    times = wall_times(fn, repeats, warmup)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats, "warmup": warmup}


def _paired_times(fn_a, fn_b, repeats: int, warmup: int = 2) -> tuple[dict, dict]:
    """Median times of two functions measured alternately (so load drift hits both equally)."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, acc in ((fn_a, ta), (fn_b, tb)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    mk = lambda t: {"median_s": statistics.median(t), "min_s": min(t), "repeats": repeats, "warmup": warmup}
    return mk(ta), mk(tb)


def random_video_tokens(frames: int, grid: tuple[int, int], dim: int, key_dim: int, seed: int = 0):
    from methods.types import VideoTokens

    g = torch.Generator().manual_seed(seed)
    F, N = frames, grid[0] * grid[1]
    sal = torch.rand(F, N, generator=g)
    return VideoTokens(
        features=torch.randn(F, N, dim, generator=g), grid=grid,
        timestamps=torch.arange(F, dtype=torch.float32) * 0.5,
        saliency={"vit_attn_received": sal / sal.sum(-1, keepdim=True),
                  "map_head_attn": torch.softmax(torch.randn(F, N, generator=g), -1)},
        global_features=torch.randn(F, 1152, generator=g), keys=torch.randn(F, N, key_dim, generator=g))


def bench_reductions(frames=32, grid=(14, 14), dim=3584, key_dim=72, repeats=5, methods=None) -> dict:
    from methods.registry import get_method, list_methods

    tokens = random_video_tokens(frames, grid, dim, key_dim)
    out = {}
    for name, opts in (methods or DEFAULT_METHODS).items():
        if name not in list_methods():
            out[name] = {"skipped": f"method {name!r} is not registered"}
            continue
        m = get_method(name, **opts)
        with torch.inference_mode():
            red = m.reduce(tokens)
            res = median_time(lambda: m.reduce(tokens), repeats)
        res.update(options=opts, kept=int(red.num_tokens), input_tokens=tokens.num_tokens)
        out[name] = res
    return {"shape": {"frames": frames, "grid": list(grid), "dim": dim, "dtype": "float32", "device": "cpu"},
            "methods": out}


def bench_adapter_overhead(frames=8, repeats=20, layers=4, image_size=56) -> dict:
    from methods.adapters import LlavaOnevisionAdapter

    ad = LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=layers, image_size=image_size)
    px = torch.randn(frames, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        vt = ad.encode_video(px, signals=(), keys=False)
        inp = ad.build_inputs("What happens in the video?", vt)
        model = ad.model
        hf_llm, ours_llm = _paired_times(
            lambda: model(inputs_embeds=inp.inputs_embeds, use_cache=False, logits_to_keep=1),
            lambda: ad.prefill(inp, use_cache=False), repeats)

        def ours_full():
            t = ad.encode_video(px, signals=(), keys=False)
            ad.prefill(ad.build_inputs("What happens in the video?", t), use_cache=False)

        hf_all, ours_all = _paired_times(
            lambda: model(input_ids=inp.input_ids, pixel_values_videos=px[None], use_cache=False, logits_to_keep=1),
            ours_full, repeats)
    return {"model": {"setting": "llava-onevision", "llm_layers": layers, "image_size": image_size,
                      "frames": frames, "prompt_tokens": inp.length},
            "llm_prefill": {"hf": hf_llm, "adapter": ours_llm,
                            "overhead": ours_llm["median_s"] / hf_llm["median_s"] - 1.0},
            "end_to_end": {"hf": hf_all, "adapter": ours_all,
                           "overhead": ours_all["median_s"] / hf_all["median_s"] - 1.0},
            "target_overhead": 0.05}


def bench_inner_stage(visual: int = 6272, text: int = 101, repeats: int = 5, hidden: int = 3584, heads: int = 28,
                      kv_heads: int = 4) -> dict:
    """Item 3 of the module doc."""
    from transformers import Qwen2Config, Qwen2Model

    from methods.registry import get_method
    from methods.runtime import VISUAL, llm_prefill, score_visual

    L = visual + text
    cfg = Qwen2Config(hidden_size=hidden, intermediate_size=hidden, num_hidden_layers=2, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, vocab_size=8, attn_implementation="sdpa")
    torch.manual_seed(0)
    lm = Qwen2Model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    h = torch.randn(1, L, hidden, generator=g)
    pos = torch.arange(L)
    kinds = torch.zeros(L, dtype=torch.long)
    kinds[min(14, text - 1):min(14, text - 1) + visual] = VISUAL
    plan = get_method("pdrop", layers=(1,)).inner_plan(2)
    with torch.inference_mode():
        cos, sin = lm.rotary_emb(h, pos[None])
        last = median_time(lambda: score_visual(lm, 1, h, cos, sin, None, "last"), repeats)
        every = median_time(lambda: score_visual(lm, 1, h, cos, sin, None, "mean"), max(1, repeats // 2))
        pruned = median_time(lambda: llm_prefill(lm, h, pos, kinds, plan, use_cache=False), repeats)
        plain = median_time(lambda: llm_prefill(lm, h, pos, kinds, None, use_cache=False), repeats)
        kept = llm_prefill(lm, h, pos, kinds, plan, use_cache=False).llm_visual
    return {"shape": {"tokens": L, "visual": visual, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                      "mlp": hidden, "layers": 2, "dtype": "float32"},
            "pdrop_plan": repr(plan), "visual_per_layer": kept,
            "score_last_row": last, "score_every_row": every, "prefill_pdrop": pruned, "prefill_no_plan": plain}


def bench_stts_steps(frames: int = 64, side: int = 27, dim: int = 1152, topk: float = 0.5, repeats: int = 5) -> dict:
    """Item 4 of the module doc."""
    from methods.stts import attention_bias, groups_to_patch_mask, rearrange_tokens, select_groups

    g = torch.Generator().manual_seed(0)
    groups = (-(-side // 3)) ** 2
    scores = torch.rand(frames, groups, generator=g)
    hidden = torch.randn(frames, side * side, dim, generator=g)
    with torch.inference_mode():
        keep = select_groups(scores, topk)
        patch_keep = groups_to_patch_mask(keep, (side, side), 3)
        out = {"bias": median_time(lambda: attention_bias(scores, (side, side)), repeats),
               "select": median_time(lambda: select_groups(scores, topk), repeats),
               "pack": median_time(lambda: rearrange_tokens(hidden, patch_keep), repeats)}
        out["bins"] = rearrange_tokens(hidden, patch_keep).num_bins
        out["pruned_groups"] = int((~keep).sum())
    out["shape"] = {"frames": frames, "grid": [side, side], "dim": dim, "topk": topk}
    return out


def bench_fidelity_pairs(frames=32, grid=(14, 14), dim=3584, key_dim=72, repeats=5, stts_frames=64,
                         stts_side=27, stts_dim=1152) -> dict:
    """Item 5 of the module doc."""
    from methods.registry import get_method
    from methods.stts import attention_bias, groups_to_patch_mask, rearrange_tokens, select_groups

    tokens = random_video_tokens(frames, grid, dim, key_dim)
    out = {}
    with torch.inference_mode():
        for name in ("visionzip", "fastvid"):
            rel, old = (get_method(name, retention=0.1, fidelity=f) for f in ("released", "project"))
            a, b = _paired_times(lambda: rel.reduce(tokens), lambda: old.reduce(tokens), repeats, warmup=1)
            out[name] = {"released": a, "project": b, "ratio": a["median_s"] / b["median_s"]}
        g = torch.Generator().manual_seed(0)
        side = (stts_side, stts_side)
        scores = torch.rand(stts_frames, (-(-stts_side // 3)) ** 2, generator=g)
        hidden = torch.randn(stts_frames, stts_side * stts_side, stts_dim, generator=g)
        for name, fn in (("stts_bias", lambda f: attention_bias(scores, side, fidelity=f)),
                         ("stts_select_and_pack", lambda f: rearrange_tokens(
                             hidden, groups_to_patch_mask(select_groups(scores, 0.5, f), side, 3), fidelity=f))):
            a, b = _paired_times(lambda: fn("released"), lambda: fn("project"), repeats, warmup=1)
            out[name] = {"released": a, "project": b, "ratio": a["median_s"] / b["median_s"]}
    return out


def bench_provenance() -> dict:
    """replicate.provenance's block plus the thread settings the timings depend on."""
    from replicate.provenance import provenance

    return provenance(device="cpu", dtype="float32",
                      extra={"threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")})


@entry_point("python -m replicate.microbench.methods")
def main(argv=None) -> int:
    p = Parser(prog="python -m replicate.microbench.methods", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=out_file, help="output JSON path")
    p.add_argument("--frames", type=integer(2, 1024), default=32)
    p.add_argument("--grid", type=integer(1, 64), default=14, help="pooled grid side (14 -> 196 tokens/frame)")
    p.add_argument("--dim", type=integer(1, 16384), default=3584)
    p.add_argument("--repeats", type=integer(1, 1000), default=5)
    p.add_argument("--overhead-repeats", type=integer(1, 10000), default=50)
    p.add_argument("--methods", nargs="*", default=None,
                   help="subset of pre-LLM methods to time (one not registered is recorded as skipped)")
    p.add_argument("--inner-stage", action="store_true", help="also time one inner-LLM stage at full width")
    p.add_argument("--stts-steps", action="store_true", help="also time STTS's bias, selection and packing")
    p.add_argument("--no-overhead", action="store_true", help="skip the adapter-overhead measurement")
    p.add_argument("--fidelity-pairs", action="store_true", help="released vs project, timed alternately")
    args = p.parse_args(argv)
    if args.methods is not None and len(set(args.methods)) < len(args.methods):
        p.error(f"--methods {args.methods}: a method is given twice")
    methods = None if args.methods is None else {m: DEFAULT_METHODS.get(m, {"retention": 0.1}) for m in args.methods}
    result = {"provenance": bench_provenance(),
              "reductions": bench_reductions(args.frames, (args.grid, args.grid), args.dim, repeats=args.repeats,
                                             methods=methods)}
    if not args.no_overhead:
        result["adapter_overhead"] = bench_adapter_overhead(repeats=args.overhead_repeats)
    if args.inner_stage:
        result["inner_stage"] = bench_inner_stage(repeats=args.repeats)
    if args.stts_steps:
        result["stts_steps"] = bench_stts_steps(repeats=args.repeats)
    if args.fidelity_pairs:
        result["fidelity_pairs"] = bench_fidelity_pairs(args.frames, (args.grid, args.grid), args.dim,
                                                        repeats=args.repeats)
        print("fidelity_pairs", json.dumps({k: round(v["ratio"], 3) for k, v in result["fidelity_pairs"].items()}))
    result["load_average"] = list(os.getloadavg())
    write_json(args.out, result)
    print(json.dumps({k: v.get("median_s", v.get("skipped")) for k, v in result["reductions"]["methods"].items()}))
    if "adapter_overhead" in result:
        print(f"adapter overhead: llm {result['adapter_overhead']['llm_prefill']['overhead']:+.1%}, "
              f"end-to-end {result['adapter_overhead']['end_to_end']['overhead']:+.1%}")
    for key in ("inner_stage", "stts_steps"):
        if key in result:
            print(key, json.dumps({k: v["median_s"] for k, v in result[key].items()
                                   if isinstance(v, dict) and "median_s" in v}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
