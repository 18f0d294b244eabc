"""HoliTom Stages I-II on a full-size LLaVA-OV video on CPU (rule holitom_bench ->
results/bench/holitom_stages.json; the analytic tier's "over 90 %" claim reads its token counts).

Input: F x 14 x 14 x 3584 fp32 random features (``replicate.microbench.methods.random_video_tokens``)
given static structure, so Stage I finds multi-frame segments as on real videos: frames are grouped
in windows of 4, and in each window a ``static_fraction`` of the positions repeat the window's first
frame plus small noise (cosine ~0.99 > tau). Timed: Stage I alone (consecutive cosine + DP
segmentation) and the whole ``holitom_reduce`` (Stages I + II), median of ``repeats`` after one
warm-up each.
"""
from __future__ import annotations

import torch

from methods.holitom import HoliTomConfig, consecutive_cosine, holitom_reduce
from methods.primitives import temporal_segments
from replicate.harness.options import rtag
from replicate.microbench.methods import median_time, random_video_tokens
from replicate.provenance import provenance

WINDOW = 4
NOISE = 0.1


def static_video(frames: int, grid: int, dim: int, static_fraction: float, seed: int = 0):
    tokens = random_video_tokens(frames, (grid, grid), dim, key_dim=72, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = tokens.features
    N = grid * grid
    n_static = int(round(static_fraction * N))
    for s in range(0, frames, WINDOW):
        pos = torch.randperm(N, generator=g)[:n_static]
        e = min(s + WINDOW, frames)
        x[s:e, pos] = x[s, pos] + NOISE * torch.randn(e - s, n_static, dim, generator=g)
    return tokens


def run(frames, grid, dim, retentions, static_fraction, repeats, threads, seed=0, config=None) -> dict:
    torch.set_num_threads(int(threads))
    tokens = static_video(frames, grid, dim, static_fraction, seed)
    out = {}
    with torch.inference_mode():
        for r in retentions:
            cfg = HoliTomConfig(retention=float(r))
            sim = consecutive_cosine(tokens.features)
            seg = temporal_segments(sim, cfg.effective_tau, cfg.max_window)
            red = holitom_reduce(tokens, cfg)
            out[rtag(r)] = {  # lossless tag (replicate.harness.options.rtag)
                "retention": float(r), "tau": cfg.effective_tau,
                "stage1": median_time(lambda: temporal_segments(consecutive_cosine(tokens.features),
                                                                 cfg.effective_tau, cfg.max_window), repeats),
                "stages_1_2": median_time(lambda: holitom_reduce(tokens, cfg), repeats),
                "input_tokens": tokens.num_tokens, "kept_tokens": int(red.num_tokens),
                # frame of each kept token's origin (a static token counts at its segment's first frame)
                "kept_per_frame": torch.bincount(red.source.reshape(-1) // (grid * grid), minlength=frames).tolist(),
                "temporally_reduced": int(seg.total_reduced)}
    return {"what": "HoliTom stages I-II (methods.holitom.holitom_reduce) on CPU, median of repeats",
            "shape": {"frames": frames, "grid": [grid, grid], "dim": dim, "dtype": "float32", "device": "cpu"},
            "input": {"generator": "replicate.microbench.methods.random_video_tokens + static windows", "window": WINDOW,
                      "static_fraction": static_fraction, "noise": NOISE, "seed": seed},
            "threads": torch.get_num_threads(), "results": out,
            "provenance": provenance(config, device="cpu", dtype="fp32", seed=seed,
                                     extra={"threads": torch.get_num_threads()})}
