"""The cpu tier's STTS comparison: trained scorer vs untrained scorer vs random groups vs the
``heuristic`` rule at the same pruning, on SynthVideoQA (an analogue, never the paper's benchmarks).

Every variant prunes the same number of groups in the same place of the tiny LLaVA-OV tower
(2x2 groups, prune_at 0 on its 2-block tower), so the LLM sees the same token count; only the
choice of groups differs. ``vanilla`` (no pruning) is the reference row.

The variants and path tags are read while the workflow parses its rules (``rules/stts.smk``), so
this module imports torch and the training loop only inside the functions that run a cell.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Optional

#: variant -> (registered method, needs the trained scorer)
VARIANTS = {
    "vanilla": ("vanilla", False),
    # test-time scaling's baseline: every other frame, no pruning: the same LLM token count as STTS
    # at 50 % on all frames (docs/sources.md#stts-test-time-scaling)
    "vanilla-half-frames": ("vanilla", False),
    "stts-trained": ("stts", True),
    "stts-untrained": ("stts", False),
    "stts-random": ("stts-random", False),
    "stts-heuristic": ("stts-heuristic", False),
}
ANALOGUE_LABEL = ("analogue: tiny LLaVA-OV trained on SynthVideoQA (synthetic), STTS transplanted with 2x2 groups; "
                  "shows the mechanism, not compared with the paper's Molmo2 numbers")


def ptag(topk: Optional[float]) -> str:
    """File tag of a pruned fraction: 0.5 -> 'p50', None (no pruning) -> 'full'."""
    return "full" if topk is None else f"p{round(float(topk) * 100):02d}"


def parse_ptag(tag: str) -> Optional[float]:
    if tag == "full":
        return None
    if not (tag.startswith("p") and tag[1:].isdigit()):
        raise ValueError(f"pruning tag {tag!r} must be 'full' or 'p<percent>' (e.g. p50)")
    return int(tag[1:]) / 100


def make_variant(variant: str, topk: Optional[float], prune_at: int, scorer: Optional[str], seed: int = 0):
    """The Method of one variant at a pruned fraction."""
    from methods.registry import get_method

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {sorted(VARIANTS)}")
    name, trained = VARIANTS[variant]
    if name == "vanilla":
        return get_method("vanilla")
    if topk is None:
        raise ValueError(f"variant {variant!r} needs a pruned fraction (got 'full')")
    opts: dict[str, Any] = {"topk": float(topk), "prune_at": prune_at, "seed": seed}
    if trained:
        if scorer is None or not Path(scorer).is_file():
            raise ValueError(f"variant 'stts-trained' needs the trained scorer file, got {scorer!r}")
        opts["scorer_checkpoint"] = str(scorer)
    return get_method(name, **opts)


def accuracy_cell(model_dir, variant: str, topk: Optional[float], *, scorer: Optional[str] = None,
                  n_samples: int = 500, seed: int = 0, split: str = "test", threads: int = 1,
                  progress: bool = True, config=None) -> dict:
    """Accuracy (overall and per question family) of one variant at one pruned fraction."""
    import torch

    from replicate.harness.accuracy import evaluate_adapter, load_checkpoint
    from replicate.provenance import provenance
    from replicate.synthvqa.data import make_split

    from .loop import default_prune_at

    torch.set_num_threads(int(threads))
    adapter, data_cfg = load_checkpoint(model_dir)
    prune_at = default_prune_at(len(adapter.model.model.vision_tower.encoder.layers))
    method = make_variant(variant, topk, prune_at, scorer, seed)
    samples = make_split(split, n_samples, seed, data_cfg)
    if variant == "vanilla-half-frames":
        samples = [half_frames(s) for s in samples]
    t0 = time.perf_counter()
    r = evaluate_adapter(adapter, method, samples, adapter.tokenizer, progress=progress,
                         desc=f"{variant} {ptag(topk)}")
    return {"variant": variant, "method": method.name, "pruned": topk, "ptag": ptag(topk), "prune_at": prune_at,
            "accuracy": r["accuracy"], "per_family": r["per_family"], "per_family_n": r["per_family_n"],
            "n": r["n"], "mean_visual_tokens_llm": r["mean_visual_tokens_llm"],
            "vanilla_visual_tokens": data_cfg.frames * adapter.tokens_per_frame,
            "dataset": f"SynthVideoQA-{split}", "label": ANALOGUE_LABEL, "scorer": scorer,
            "seconds": time.perf_counter() - t0,
            "provenance": provenance(config, device="cpu", dtype="fp32", seed=seed, attn_implementation="sdpa",
                                     extra={"threads": torch.get_num_threads()})}


def half_frames(sample):
    """The sample with every other frame (and its timestamp)."""
    from dataclasses import replace

    return replace(sample, video=sample.video[::2], timestamps=sample.timestamps[::2])


def paper_tier_cells(frames_baseline: int = 64, frames_stts: int = 128, topk: float = 0.5) -> list[dict]:
    """Test-time scaling on a real box (claim stts-test-time-scaling): per long-video benchmark the
    baseline Molmo2-4B at ``frames_baseline`` vs STTS Lite-50 at ``frames_stts`` frames, at the same
    LLM video-token budget (81 x frames_baseline = 81 x frames_stts x (1 - topk))."""
    if round(frames_stts * (1 - topk)) != frames_baseline:
        raise ValueError(f"{frames_stts} frames at topk {topk} keep {frames_stts * (1 - topk):g} frames' tokens, "
                         f"not the baseline's {frames_baseline}: the budgets must match")
    return [{"benchmark": b, "baseline": {"checkpoint": "molmo2-4b", "method": "vanilla", "frames": frames_baseline},
             "stts": {"checkpoint": "molmo2-4b-lite-50", "method": "stts", "frames": frames_stts,
                      "options": {"topk": topk, "prune_at": 3}},
             "llm_video_tokens": 81 * frames_baseline}
            for b in ("videomme", "longvideobench", "mlvu", "lvbench")]


def write_table(cells: list[dict], path) -> list[dict]:
    """results/cpu/stts/accuracy.csv: one row per (variant, pruning) with per-family columns."""
    fams = sorted({f for c in cells for f in c["per_family"]})
    rows = []
    for c in sorted(cells, key=lambda c: (c["pruned"] or 0.0, c["variant"])):
        row = {"variant": c["variant"], "pruned_pct": None if c["pruned"] is None else round(100 * c["pruned"]),
               "accuracy": round(c["accuracy"], 4), "n": c["n"],
               "mean_visual_tokens_llm": round(c["mean_visual_tokens_llm"], 2)}
        row.update({f"acc_{f}": round(c["per_family"].get(f, float("nan")), 4) for f in fams})
        row["dataset"] = c["dataset"]
        row["label"] = "analogue"
        rows.append(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


_ANALOGUE_OF = {
    "untrained": ("trained scorer vs the same scorer untrained (random init, same seed)", None),
    "random": ("S5: trained STTS vs random group pruning", "62.3 vs 61.4 at 50 %, 59.8 vs 57.5 at 80 % (Molmo2-4B, "
               "13 video-QA benchmarks)"),
    "heuristic": ("STTS's heuristic ablation rule vs the trained scorer", None),
    "vanilla": ("S4: accuracy drop of trained STTS vs the unpruned model", "-0.7 (62.3 vs 63.0) at 50 % (Molmo2-4B)"),
    "vanilla-half-frames": ("S7: test-time scaling: STTS on all frames vs the baseline on half the frames at the "
                            "same LLM token count", "+0.5 to 1.1 % on long-video QA (Molmo2-4B)"),
}


def _se(p: float, n: int) -> float:
    return (p * (1 - p) / max(1, n)) ** 0.5


def analogue_records(cells: list[dict]) -> list[dict]:
    """Trained scorer against each comparison at each pruning level: measured accuracies and their
    difference with binomial standard errors. Labelled analogues: no verdict against paper numbers."""
    by = {(c["variant"], c["ptag"]): c for c in cells}
    van = by.get(("vanilla", "full"))
    out = []
    for tag in sorted({c["ptag"] for c in cells if c["ptag"] != "full"}):
        tr = by.get(("stts-trained", tag))
        if tr is None:
            continue
        for other, (what, paper) in _ANALOGUE_OF.items():
            if other == "vanilla-half-frames" and tag != "p50":
                continue   # the matched budget: 50 % pruned on all frames = every other frame unpruned
            ref = {"vanilla": van, "vanilla-half-frames": by.get(("vanilla-half-frames", "full"))}.get(
                other, by.get((f"stts-{other}", tag)))
            if ref is None:
                continue
            diff = tr["accuracy"] - ref["accuracy"]
            out.append({
                "id": f"stts-synth-trained-vs-{other}-{tag}", "analogue_of": what, "pruned": tr["pruned"],
                "kind": "analogue (not confirmed or refuted against the paper's numbers)",
                "dataset": tr["dataset"], "n": tr["n"],
                "trained_accuracy": tr["accuracy"], "other": ref["variant"], "other_accuracy": ref["accuracy"],
                "difference": diff,
                "difference_se": (_se(tr["accuracy"], tr["n"]) ** 2 + _se(ref["accuracy"], ref["n"]) ** 2) ** 0.5,
                "paper_context": paper, "label": ANALOGUE_LABEL})
    return out


def summary_metrics(cells: list[dict], train_metrics: dict[str, dict]) -> dict:
    """results/cpu/stts/metrics.json: per pruning level the trained scorer's accuracy beside the
    untrained scorer, random groups and the heuristic rule, plus the training time and losses."""
    by = {(c["variant"], c["ptag"]): c for c in cells}
    levels = {}
    for tag, m in sorted(train_metrics.items()):
        acc = {v: by[(v, tag)]["accuracy"] for v in VARIANTS if (v, tag) in by}
        fam = {v: by[(v, tag)]["per_family"] for v in VARIANTS if (v, tag) in by}
        levels[tag] = {"pruned": parse_ptag(tag), "accuracy": acc, "per_family": fam,
                       "train_seconds": m["train_seconds"], "train_steps": m["steps"],
                       "seconds_per_step": m["seconds_per_step"], "threads": m["threads"],
                       "loss_first_steps": m["first_steps"], "loss_last_steps": m["last_steps"]}
    van = by.get(("vanilla", "full"))
    half = by.get(("vanilla-half-frames", "full"))
    return {"label": ANALOGUE_LABEL, "vanilla_accuracy": None if van is None else van["accuracy"],
            "vanilla_half_frames_accuracy": None if half is None else half["accuracy"],
            "levels": levels, "train_seconds_total": sum(m["train_seconds"] for m in train_metrics.values()),
            "n": next((c["n"] for c in cells), None)}
