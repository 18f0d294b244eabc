"""Evaluators of STTS's efficiency and tokens-pruned claims (listed in replicate.evaluators).

- ``stts_measured_tokens_pruned`` / ``stts_measured_vit_tail``: the real selection and packing on
  real scores at Molmo2-4B shapes (results/analytic/stts_packing.json, see
  ``replicate.harness.stts_packing``): LLM tokens pruned, and ViT-tail slots pruned with the
  packing's bins (refill and fragmentation counted), not ``topk`` read back.
- ``gpu_inference_speedup`` / ``gpu_training_speedup``: vanilla / STTS seconds of one request
  (ViT incl. scoring + packing, LLM prefill) and of one training step (forward + backward, all
  weights trainable) on random-weight Molmo2-4B at the claim's frames, from
  results/gpu/stts/efficiency.json (``python -m replicate.harness.stts_efficiency --arch molmo2-4b
  --device cuda``). Without a CUDA device that file is never built and the claim is not run, with
  that reason; the cost model's prediction is in the evidence when the analytic file exists.
"""
from __future__ import annotations

from .evaluator_base import Context, Measurement

PACKING = "results/analytic/stts_packing.json"
PREDICTIONS = "results/analytic/stts_efficiency.json"
GPU_TIMING = "results/gpu/stts/efficiency.json"


def _full_size(claim, ctx: Context) -> dict:
    s = claim["setting"]
    data = ctx.json(PACKING)["full_size"]
    want = (int(s["frames"]), float(s.get("options", {}).get("topk", 0.5)))
    got = (int(data["setting"]["frames"]), float(data["setting"]["topk"]))
    if got != want:
        raise ValueError(f"{PACKING} was measured at frames/topk {got}, the claim needs {want}")
    return data


def stts_measured_tokens_pruned(claim, ctx: Context) -> Measurement:
    data = _full_size(claim, ctx)
    m = data["mean"]
    return Measurement(float(m["llm_tokens_pruned_pct"]), {
        "result_file": PACKING, "setting": data["setting"], "n_videos": data["n_videos"],
        "per_video": [v["llm_tokens_pruned_pct"] for v in data["videos"]],
        "note": "pooled tokens reaching the LLM, from the real video-global selection on novelty scores"})


def stts_measured_vit_tail(claim, ctx: Context) -> Measurement:
    data = _full_size(claim, ctx)
    m = data["mean"]
    return Measurement(float(m["vit_tail_slots_pruned_pct"]), {
        "result_file": PACKING, "setting": data["setting"], "n_videos": data["n_videos"],
        "bins_mean": m["bins"], "bins_without_fragmentation_mean": m["bins_without_fragmentation"],
        "refilled_patches_mean": m["refilled_patches"], "frames_alone_in_bin_mean": m["frames_alone_in_bin"],
        "vit_tail_slots_pruned_pct_ceil_bound": m["vit_tail_slots_pruned_pct_ceil"],
        "note": "ViT blocks after prune_at+1 run on bins x 729 slots vs frames x 729 (packing with refill)"})


def _gpu_speedup(claim, ctx: Context, kind: str) -> Measurement:
    s = claim["setting"]
    data = ctx.json(GPU_TIMING)
    if data.get("missing"):
        raise ValueError(f"{GPU_TIMING}: {data['missing']}")
    rows = data.get("rows") or []
    if not rows or not str(rows[0]["device"]).startswith("cuda"):
        raise ValueError(f"{GPU_TIMING} holds no CUDA timing")
    row = next((r for r in data["rows"] if r["frames"] == int(s["frames"])), None)
    if row is None:
        raise ValueError(f"{GPU_TIMING} has no row at {s['frames']} frames (frames timed: "
                         f"{[r['frames'] for r in data['rows']]})")
    key = f"{kind}_speedup"
    step = "inference" if kind == "inference" else "train_step"
    failed = [f"{m}: {row[f'{m}_{step}_reason']}" for m in ("vanilla", "stts") if row.get(f"{m}_{step}_status")]
    if failed:
        raise ValueError(f"{GPU_TIMING} at {row['frames']} frames: {kind} did not complete ({'; '.join(failed)})")
    if key not in row:
        raise ValueError(f"{GPU_TIMING} has no {kind} timing (run without --no-train)")
    ev = {"result_file": GPU_TIMING, "arch": data["arch"], "frames": row["frames"], "dtype": row["dtype"],
          "vanilla_s": row[f"vanilla_{'inference' if kind == 'inference' else 'train_step'}_s"],
          "stts_s": row[f"stts_{'inference' if kind == 'inference' else 'train_step'}_s"],
          "stts_bins": row["stts_bins"], "checkpointing": row.get("checkpointing"),
          "measured_on": data.get("measured_on") or f"measured here on {row['device']}"}
    pred = next((p for p in data.get("predicted_molmo2_4b", []) if p["frames"] == row["frames"]), None)
    if pred is not None:
        ev["predicted"] = pred[kind]
    return Measurement(float(row[key]), ev)


def gpu_inference_speedup(claim, ctx: Context) -> Measurement:
    return _gpu_speedup(claim, ctx, "inference")


def gpu_training_speedup(claim, ctx: Context) -> Measurement:
    return _gpu_speedup(claim, ctx, "training")
