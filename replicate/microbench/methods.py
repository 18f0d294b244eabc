"""Micro-benchmarks of the methods package (not a test; numbers go to JSON with provenance).

``python -m replicate.microbench.methods --out results/bench/methods.json`` times

1. every registered pre-LLM reduction on a full-size LLaVA-OV video: F=32 frames x N=196 tokens x
   D=3584 fp32 on CPU, random features and saliency, median of ``--repeats`` after one warm-up;
2. the adapter's overhead with no pruning against the plain HF forward on a tiny model: the LLM
   prefill (our decoder-layer loop vs ``model(inputs_embeds=...)``) and the whole path (vision +
   LLM, with saliency signals off) vs ``model(input_ids, pixel_values_videos)``. Target < 5 %.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from replicate.io import write_json

DEFAULT_METHODS = {
    "visionzip": {"retention": 0.1},
    "random": {"retention": 0.1},
    "uniform-pool": {"retention": 0.1},
    "holitom-wo-m": {"retention": 0.1},
    "tango": {"retention": 0.1},
    "fastvid": {"retention": 0.1},
}


def median_time(fn, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
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


def bench_provenance() -> dict:
    """replicate.provenance's block plus the thread settings the timings depend on."""
    from replicate.provenance import provenance

    return provenance(device="cpu", dtype="float32",
                      extra={"threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m replicate.microbench.methods", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output JSON path")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--grid", type=int, default=14, help="pooled grid side (14 -> 196 tokens/frame)")
    p.add_argument("--dim", type=int, default=3584)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--overhead-repeats", type=int, default=50)
    p.add_argument("--methods", nargs="*", default=None, help="subset of pre-LLM methods to time")
    args = p.parse_args(argv)
    methods = None if args.methods is None else {m: DEFAULT_METHODS.get(m, {"retention": 0.1}) for m in args.methods}
    result = {"provenance": bench_provenance(),
              "reductions": bench_reductions(args.frames, (args.grid, args.grid), args.dim, repeats=args.repeats,
                                             methods=methods),
              "adapter_overhead": bench_adapter_overhead(repeats=args.overhead_repeats)}
    write_json(args.out, result)
    print(json.dumps({k: v.get("median_s", v.get("skipped")) for k, v in result["reductions"]["methods"].items()}))
    print(f"adapter overhead: llm {result['adapter_overhead']['llm_prefill']['overhead']:+.1%}, "
          f"end-to-end {result['adapter_overhead']['end_to_end']['overhead']:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
