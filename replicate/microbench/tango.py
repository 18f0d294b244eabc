"""Speed benchmark of Tango's pre-LLM step against a straightforward reference of the released code.

``python -m replicate.microbench.tango --out results/bench/tango.json`` runs, on one synthetic video of the
paper's OV size (F=32 frames x N=196 tokens x D=3584, fp32, CPU, ``--threads`` intra-op threads),
``methods.tango.tango_reduce`` at ``fidelity="released"`` and ``replicate.microbench.tango_reference.
released_reference`` (cdist, the official per-cluster loop, plain ST-RoPE) on the same tensors,
alternately (so load drift hits both alike), one warm-up then the median of ``--repeats``
(wall and process-CPU time). It checks
that both give the same output (kept indices equal, features within ``--atol``) and writes both
times, their ratio, the output check and the machine's load into JSON. A failed check exits 1.

The video has scene cuts every 8 frames and three kinds of positions (nearly static, cosine about
0.77 between frames, dynamic), so HoliTom segmentation forms multi-frame segments and the static /
dynamic split, behaviour A and the segment-wise context merge all do work.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from methods.tango import TangoConfig, resolve_sinks, tango_reduce
from replicate.microbench.tango_reference import released_reference
from methods.types import VideoTokens


def correlated_video(frames: int = 32, grid: tuple[int, int] = (14, 14), dim: int = 3584,
                     scene_len: int = 8, seed: int = 0) -> VideoTokens:
    """Synthetic OV-size video: per-scene base features plus per-position noise of three levels
    (0.2: cosine ~0.96 between frames; 0.55: ~0.77, static for tau 0.65 but not 0.8; 3.0: dynamic)."""
    g = torch.Generator().manual_seed(seed)
    N = grid[0] * grid[1]
    base = torch.randn(math.ceil(frames / scene_len), N, dim, generator=g)
    level = torch.tensor([0.2, 0.55, 3.0])[torch.randint(0, 3, (N,), generator=g)]
    X = base.repeat_interleave(scene_len, 0)[:frames] + level[None, :, None] * torch.randn(frames, N, dim, generator=g)
    sal = torch.softmax(2.0 * torch.randn(frames, N, generator=g), -1)
    return VideoTokens(features=X, grid=grid, timestamps=torch.arange(frames, dtype=torch.float32) * 0.5,
                       saliency={"map_head_attn": sal})


def compare(tokens: VideoTokens, cfg: TangoConfig, atol: float) -> dict:
    """Output check of tango_reduce against the reference on ``tokens``."""
    red = tango_reduce(tokens, cfg)
    src, feats = released_reference(tokens.features, tokens.require("map_head_attn"), tokens.times(),
                                     tokens.grid, cfg, resolve_sinks(cfg, tokens))
    same_idx = torch.equal(red.source, src)
    diff = float((red.features.float() - feats).abs().max()) if same_idx else float("inf")
    return {"tokens_kept": red.num_tokens, "reference_tokens_kept": int(src.numel()),
            "indices_equal": same_idx, "max_abs_feature_diff": diff, "atol": atol,
            "identical": bool(same_idx and diff <= atol), "segments": red.info["segments"],
            "static_positions": red.info["static_positions"]}


def paired_times(fn_a, fn_b, repeats: int, warmup: int) -> tuple[dict, dict]:
    """Wall and process-CPU seconds of two functions run alternately. The CPU time (all threads)
    is reported beside the wall time because this machine is shared: under load the wall time
    mostly measures the scheduler's share."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    out = ({"wall": [], "cpu": []}, {"wall": [], "cpu": []})
    for _ in range(repeats):
        for fn, acc in zip((fn_a, fn_b), out):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            acc["wall"].append(time.perf_counter() - w0)
            acc["cpu"].append(time.process_time() - c0)
    for acc in out:
        acc["median_wall"] = statistics.median(acc["wall"])
        acc["median_cpu"] = statistics.median(acc["cpu"])
    return out


def run(frames: int, dim: int, retention: float, threads: Sequence[int], repeats: int, warmup: int,
        atol: float) -> dict:
    tokens = correlated_video(frames=frames, dim=dim)
    cfg = TangoConfig(retention=retention, fidelity="released")
    sinks = resolve_sinks(cfg, tokens)
    check = compare(tokens, cfg, atol)
    ours = lambda: tango_reduce(tokens, cfg)
    ref = lambda: released_reference(tokens.features, tokens.require("map_head_attn"), tokens.times(),
                                     tokens.grid, cfg, sinks)
    timings = {}
    for n in threads:
        torch.set_num_threads(n)
        load_before = os.getloadavg()
        t_ours, t_ref = paired_times(ours, ref, repeats, warmup)
        timings[str(n)] = {
            "tango_reduce_s": t_ours, "reference_s": t_ref,
            "speedup_vs_reference_wall": t_ref["median_wall"] / t_ours["median_wall"],
            "speedup_vs_reference_cpu": t_ref["median_cpu"] / t_ours["median_cpu"],
            "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        }
    return {
        "what": "Tango pre-LLM step (released fidelity) vs a straightforward reference of the released code",
        "input": {"frames": frames, "grid": list(tokens.grid), "dim": dim, "dtype": "float32",
                  "generator": "replicate.microbench.tango.correlated_video(seed=0)"},
        "config": {"retention": retention, "tau": cfg.resolved_tau, "static_tau": cfg.static_tau,
                   "fidelity": cfg.fidelity, "sinks": list(sinks)},
        "output_check": check,
        "threads": {k: v for k, v in timings.items()},
        "repeats": repeats, "warmup": warmup,
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--dim", type=int, default=3584)
    ap.add_argument("--retention", type=float, default=0.10)
    ap.add_argument("--threads", default="2,1",
                    help="comma-separated intra-op thread counts, each timed separately (default 2,1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--atol", type=float, default=1e-5)
    a = ap.parse_args(argv)
    try:
        threads = [int(t) for t in str(a.threads).split(",")]
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {a.threads!r}")
    if any(t < 1 for t in threads):
        ap.error(f"--threads must be >= 1, got {a.threads!r}")
    result = run(a.frames, a.dim, a.retention, threads, a.repeats, a.warmup, a.atol)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(a.out)  # no half-written result
    print(json.dumps(result["output_check"], default=str))
    for n, t in result["threads"].items():
        print(f"threads={n}: tango_reduce wall {t['tango_reduce_s']['median_wall']:.3f} s "
              f"(cpu {t['tango_reduce_s']['median_cpu']:.3f}), reference wall {t['reference_s']['median_wall']:.3f} s "
              f"(cpu {t['reference_s']['median_cpu']:.3f}); speedup wall {t['speedup_vs_reference_wall']:.2f}x, "
              f"cpu {t['speedup_vs_reference_cpu']:.2f}x; load {t['loadavg_before'][0]:.1f}")
    return 0 if result["output_check"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
