"""STTS efficiency in inference and training: cost-model predictions with the packing's real bin
count, and wall-clock timings of the Molmo2 adapter with and without STTS.

Predictions (``predict``): the exact-convention forward cost (vision tower with the packed bins,
connector, LLM prefill, last-token LM head) of vanilla over STTS is the *inference* speed-up; the
*training* step uses the forward+backward convention: backward = 2 x forward for every trainable
matmul (STTS fine-tunes end to end, so every weight is trainable), LM head over every position,
i.e. 3 x the forward with ``lm_head="all"``. STTS pays for its scorer (group attention + 3-layer
MLP per group) in both. The ViT bins come from the real first-fit-decreasing packing with refill
(``replicate.harness.stts_packing``) or, as a bound, ceil(kept patches / 729).

Timings (``time_molmo2``): one request (ViT incl. scoring and packing, LLM prefill) and one
training step (forward + backward of the answer loss, all weights trainable) at each frame count,
vanilla vs STTS, on the adapter's device. The gpu tier runs it on random-weight Molmo2-4B; the cpu
tier on a small random-weight Molmo2 of the real layout (27 x 27 patches).
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Optional, Sequence

import torch

from costmodel.schedule import VisionLoad

#: The paper's reported wall-clock speed-ups (docs/sources.md#claim-s2, #claim-s3; 2nd-hand numbers).
REPORTED = ({"frames": 128, "kind": "inference", "value": 1.61}, {"frames": 128, "kind": "training", "value": 1.62},
            {"frames": 256, "kind": "inference", "value": 2.22}, {"frames": 256, "kind": "training", "value": 2.25})
FRAMES = (16, 32, 64, 128, 256)
TRAIN_FACTOR = 3  # forward + backward = 3 x forward FLOPs (backward: grads w.r.t. inputs and weights)


def scorer_macs(arch, frames: int, groups_per_frame: int, group_size: int = 9) -> int:
    """MACs of the STTS scorer: k/v over every patch, q/o per group, 3-layer MLP on [z_{t-1}, z_t]."""
    d, m = arch.vision.hidden, arch.vision.intermediate
    g = frames * groups_per_frame
    return g * (2 * group_size * d * d + 2 * d * d + 2 * group_size * d + 2 * d * m + m * m + m)


def stts_schedule(arch, frames: int, topk: float, prune_at: int, bins: int, text_tokens: int = 0):
    """The nominal STTS schedule with the ViT tail on ``bins`` packed bins (real packing, refill)."""
    from methods.nominal import nominal_schedule

    base = nominal_schedule(arch, "stts", frames=frames, topk=topk, prune_at=prune_at, text_tokens=text_tokens)
    n = arch.vision.patches_per_frame
    vision = tuple(VisionLoad(frames, n) if l <= prune_at + 1 else VisionLoad(int(bins), n)
                   for l in range(len(base.vision)))
    return replace(base, vision=vision, notes=base.notes + (f"ViT tail on {bins} measured bins",))


def forward_macs(arch, schedule, lm_head: str = "last") -> int:
    from costmodel import exact_costs

    return int(exact_costs(arch, schedule, causal=True, lm_head=lm_head).total())


def predict(arch_name: str = "molmo2-4b", frames: Sequence[int] = FRAMES, topk: float = 0.5, prune_at: int = 3,
            bins: Optional[dict] = None, text_tokens: int = 64) -> list[dict]:
    """Predicted inference and training speed-ups per frame count. ``bins``: frames -> measured
    bin count (else the ceil bound)."""
    from costmodel.arch import load_arch
    from methods.nominal import nominal_schedule

    arch = load_arch(arch_name)
    n, per_frame = arch.vision.patches_per_frame, arch.tokens_per_frame
    out = []
    for f in frames:
        van = nominal_schedule(arch, "vanilla", frames=f, text_tokens=text_tokens)
        kept = f * per_frame - min(round(per_frame * topk * f), per_frame * (f - 1))
        ceil_bins = math.ceil(kept * (n // per_frame) / n)
        b = int((bins or {}).get(f, ceil_bins))
        st = stts_schedule(arch, f, topk, prune_at, b, text_tokens)
        sc = scorer_macs(arch, f, per_frame, n // per_frame)
        inf_v, inf_s = forward_macs(arch, van), forward_macs(arch, st) + sc
        tr_v = TRAIN_FACTOR * forward_macs(arch, van, "all")
        tr_s = TRAIN_FACTOR * (forward_macs(arch, st, "all") + sc)
        out.append({"frames": f, "bins": b, "bins_source": "measured packing" if bins and f in bins else "ceil bound",
                    "inference": inf_v / inf_s, "training": tr_v / tr_s, "vanilla_forward_macs": inf_v,
                    "stts_forward_macs": inf_s, "scorer_macs": sc,
                    "convention": "exact MACs; training = 3 x forward (all weights trainable), LM head on all "
                                  "positions; inference = forward to the first token"})
    return out


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _clock(fn, device, repeats: int, warmup: int) -> tuple[float, object]:
    """Median seconds of ``fn()`` over ``repeats`` after ``warmup`` calls, and its last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], out


def _request(adapter, pix, method, question: str = "What happens in the video?"):
    """One request through ``methods.pipeline.run``: ViT (+ scorer, bias, packing) -> connector ->
    prompt -> LLM prefill; returns the schedule facts."""
    from methods.pipeline import run

    r = run(adapter, method, pix, question)
    return {"bins": r.video.info["bins"] if hasattr(r.video, "info") else pix.shape[0],
            "llm_visual": r.schedule.llm_visual[0], "prompt": r.inputs.length}


def _train_step(adapter, pix, scorer, topk: float, prune_at: int, answer_ids: torch.Tensor):
    """Forward + backward of the answer loss with every weight trainable (end-to-end SFT)."""
    from methods.adapters.molmo2 import answer_logits

    run = adapter.run_tower(pix, prune_at=prune_at if scorer is not None else None, topk=topk, scorer=scorer)
    inputs = adapter.build_inputs("What happens in the video?", adapter.tokens_of(run))
    logits = answer_logits(adapter, inputs, answer_ids)
    loss = torch.nn.functional.cross_entropy(logits.float(), answer_ids)
    loss.backward()
    adapter.model.zero_grad(set_to_none=True)
    if scorer is not None:
        scorer.zero_grad(set_to_none=True)
    return float(loss.detach())


def time_molmo2(adapter, frames: Sequence[int], topk: float = 0.5, prune_at: int = 3, repeats: int = 3,
                warmup: int = 1, seed: int = 0, train: bool = True) -> list[dict]:
    """Measured inference and training-step seconds, vanilla vs STTS, per frame count."""
    from methods.baselines.inner_llm import Vanilla
    from methods.stts_method import STTS, STTSMethodConfig

    dev = adapter.device
    stts = STTS(STTSMethodConfig(topk=topk, prune_at=prune_at, seed=seed))
    scorer = stts.scorer(adapter)
    methods = {"vanilla": Vanilla(), "stts": stts}
    answer = torch.tensor([11, 12, 13, 14], device=dev)
    for p in adapter.model.parameters():
        p.requires_grad_(True)
    rows = []
    for f in frames:
        pix = torch.randn(f, 3, adapter.image_size, adapter.image_size,
                          generator=torch.Generator().manual_seed(seed)).to(device=dev, dtype=adapter.dtype)
        row = {"frames": f, "device": str(dev), "dtype": str(adapter.dtype).replace("torch.", "")}
        for name, sc in (("vanilla", None), ("stts", scorer)):
            t, facts = _clock(lambda: _request(adapter, pix, methods[name]), dev, repeats, warmup)
            row[f"{name}_inference_s"] = t
            row[f"{name}_bins"], row[f"{name}_llm_visual"] = facts["bins"], facts["llm_visual"]
            if train:
                row[f"{name}_train_step_s"], _ = _clock(
                    lambda: _train_step(adapter, pix, sc, topk, prune_at, answer), dev, repeats, warmup)
        row["inference_speedup"] = row["vanilla_inference_s"] / row["stts_inference_s"]
        if train:
            row["training_speedup"] = row["vanilla_train_step_s"] / row["stts_train_step_s"]
        rows.append(row)
    return rows


def cpu_bench_molmo2(seed: int = 0):
    """A small random-weight Molmo2 of the real layout for CPU timing: 27 x 27 patches at 378 px,
    3 x 3 pooling, 8 ViT blocks (hidden 96) with the connector on blocks [7, 5], 2-layer LLM."""
    from methods.adapters.molmo2 import Molmo2VideoAdapter, tiny_molmo2_config

    cfg = tiny_molmo2_config(image_size=378, vision_layers=8, text_layers=2)
    cfg["vision_config"].update(hidden_size=96, intermediate_size=192, num_attention_heads=4,
                                num_key_value_heads=4, head_dim=24)
    cfg["adapter_config"].update(hidden_size=96, num_attention_heads=4, num_key_value_heads=4, head_dim=24)
    return Molmo2VideoAdapter.from_config(cfg, seed=seed)


def main(argv=None) -> int:
    """``python -m replicate.harness.stts_efficiency``: time vanilla vs STTS (inference and training
    step) and write the cost model's predictions beside them, as one JSON file."""
    import argparse

    from replicate.io import write_json
    from replicate.provenance import provenance

    ap = argparse.ArgumentParser(prog="python -m replicate.harness.stts_efficiency", description=main.__doc__)
    ap.add_argument("--arch", default="cpu-bench", help="molmo2-4b (random weights, full size) or cpu-bench")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--frames", default="4,8", help="comma-separated frame counts")
    ap.add_argument("--topk", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-train", action="store_true", help="inference only")
    ap.add_argument("--out", required=True, help="JSON file to write")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device}: no CUDA device here")
    torch.set_num_threads(a.threads)
    frames = [int(x) for x in a.frames.split(",") if x]
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if a.arch == "cpu-bench":
        adapter = cpu_bench_molmo2()
    else:
        from methods.adapters.molmo2 import Molmo2VideoAdapter
        adapter = Molmo2VideoAdapter.from_config(a.arch, device=a.device, dtype=dtype)
    adapter.model.to(device=a.device, dtype=dtype)
    rows = time_molmo2(adapter, frames, topk=a.topk, repeats=a.repeats, warmup=a.warmup, train=not a.no_train)
    write_json(a.out, {"arch": a.arch, "topk": a.topk, "prune_at": 3, "rows": rows,
                       "predicted_molmo2_4b": predict("molmo2-4b", frames, a.topk),
                       "reported": list(REPORTED),
                       "provenance": provenance(None, device=a.device, dtype=a.dtype, seed=0,
                                                attn_implementation="sdpa", extra={"threads": a.threads})})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
