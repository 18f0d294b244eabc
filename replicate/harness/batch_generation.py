"""Batched generation against a loop of single requests, on tiny checkpoints: JSON for the record.

    python -m replicate.harness.batch_generation --out results/bench/batch_generation.json

For each family (LLaVA-OneVision, Qwen2.5-VL, Molmo2: tiny random-weight checkpoints in the HF
layout, written to a temporary directory by ``replicate.paper.rehearsal``) and method, the same
``--batch`` requests (different synthetic videos and questions of different lengths) run through
``methods.load(dir, method).generate``: once as one call on the whole batch, once as a loop of
one-request calls. Both generate exactly ``--new-tokens`` tokens (no end-of-sequence stop, so both
do the same work). The two alternate (load drift hits both alike); one warm-up, then the median of
``--repeats``, in wall-clock and process-CPU seconds (CPU time is the steadier of the two on a
shared machine; with ``--threads 1`` it is the work done). The greedy tokens of the two must be
equal (else exit 1). Reported per request: seconds of the batch call / batch size and of the
loop / batch size, and their ratio (loop / batch: above 1 means the batch is faster).

What the batch shares: the decode steps (one forward per step for the whole batch, over
left-padded per-layer KV caches); the encode and prefill of each request still run one at a time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

#: family -> (checkpoint writer name in replicate.paper.rehearsal, load() keyword arguments, methods)
CASES = {
    "llava-onevision": ("write_llava_checkpoint", {}, {"vanilla": {}, "holitom": {"retention": 0.5, "inner_k": 2}}),
    "qwen2.5-vl": ("write_qwen2_5_vl_checkpoint", {"adapter_options": {"image_size": 112}},
                   {"vanilla": {}, "fastv": {"k": 2, "keep": 0.5}}),
    "molmo2": ("write_molmo2_checkpoint", {}, {"vanilla": {}, "random": {"retention": 0.5}}),
}
QUESTIONS = ("What happens in the video?", "Which colour is the object on the left at the end?",
             "Who?", "Describe the scene, then say what changes between the first and the last frame.")


def videos(adapter, n: int, frames: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = int(adapter.image_size)
    return [torch.rand(frames, 3, s, s, generator=g) * 2 - 1 for _ in range(n)]


def time_family(family: str, root: Path, batch: int, frames: int, new_tokens: int, repeats: int) -> list[dict]:
    import methods
    from replicate.paper import rehearsal

    writer, load_kw, cases = CASES[family]
    ckpt = getattr(rehearsal, writer)(root / family, seed=0)
    rows = []
    for name, options in cases.items():
        model = methods.load(ckpt, name, frames=frames, **load_kw, **options)
        vids = videos(model.adapter, batch, frames)
        qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
        gen = dict(max_new_tokens=new_tokens, eos_token_id=[])
        one_call = lambda: model.generate(vids, qs, batch_size=batch, **gen)
        loop = lambda: [model.generate([v], [q], **gen)[0] for v, q in zip(vids, qs)]
        batched, single = one_call(), loop()                                  # warm-up and output check
        equal = [b.tokens == s.tokens for b, s in zip(batched, single)]
        wall = {"batch": [], "loop": []}
        cpu = {"batch": [], "loop": []}
        for _ in range(repeats):
            for key, fn in (("batch", one_call), ("loop", loop)):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                wall[key].append(time.perf_counter() - w0)
                cpu[key].append(time.process_time() - c0)
        med = {k: {key: statistics.median(v[key]) for key in v} for k, v in (("wall", wall), ("cpu", cpu))}
        rows.append({"family": family, "method": name, "options": options, "batch": batch,
                     "greedy_tokens_equal": all(equal), "tokens_kept": batched[0].tokens_kept.as_dict(),
                     "batch_s_per_request": med["wall"]["batch"] / batch,
                     "loop_s_per_request": med["wall"]["loop"] / batch,
                     "loop_over_batch": med["wall"]["loop"] / med["wall"]["batch"],
                     "batch_cpu_s_per_request": med["cpu"]["batch"] / batch,
                     "loop_cpu_s_per_request": med["cpu"]["loop"] / batch,
                     "loop_over_batch_cpu": med["cpu"]["loop"] / med["cpu"]["batch"],
                     "wall_s": wall, "cpu_s": cpu})
        model.remove()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m replicate.harness.batch_generation", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--families", nargs="*", default=list(CASES), choices=list(CASES))
    args = p.parse_args(argv)
    for name in ("batch", "frames", "new_tokens", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="batch_generation_") as tmp:
        rows = [r for fam in args.families
                for r in time_family(fam, Path(tmp), args.batch, args.frames, args.new_tokens, args.repeats)]
    from replicate.provenance import provenance

    out = {"what": "methods.load(...).generate: one call on a batch vs a loop of single requests (tiny checkpoints)",
           "setting": {"batch": args.batch, "frames": args.frames, "new_tokens": args.new_tokens,
                       "repeats": args.repeats, "threads": args.threads, "statistic": "median after 1 warm-up",
                       "dtype": "float32", "device": "cpu"},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                       "torch": torch.__version__},
           "rows": rows, "provenance": provenance({}, device="cpu", dtype="fp32", seed=0)}
    from replicate.io import write_json

    write_json(args.out, out)
    for r in rows:
        print(f"{r['family']:16s} {r['method']:8s} wall: batch {r['batch_s_per_request'] * 1e3:7.1f} ms/request, "
              f"loop {r['loop_s_per_request'] * 1e3:7.1f} ({r['loop_over_batch']:.2f}x); cpu: batch "
              f"{r['batch_cpu_s_per_request'] * 1e3:7.1f}, loop {r['loop_cpu_s_per_request'] * 1e3:7.1f} "
              f"({r['loop_over_batch_cpu']:.2f}x); greedy equal: {r['greedy_tokens_equal']}")
    return 0 if all(r["greedy_tokens_equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
