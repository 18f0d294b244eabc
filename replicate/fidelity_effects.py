"""What the released-code fidelity of the baselines and STTS changes (issue 24), measured.

``python -m replicate.fidelity_effects --out results/bench/fidelity_effects.json`` computes, for
``fidelity="released"`` (the default) against ``"project"`` (this project's earlier reading):

- ``analytic``: token counts and paper-convention FLOPs (costmodel) of PDrop's default and its two
  candidate configurations for HoliTom's table (only the int(N * ratio) rounding moves a count; the
  rank rule and the position renumbering change which tokens stay, never how many), FastV's, FastVID's
  per-frame budget beside HoliTom's table budget, and STTS's pruned groups of Lite-30 % / Lite-50 %
  at 32 / 64 / 128 / 256 frames of 81 groups;
- ``full_size``: the reductions themselves on a synthetic LLaVA-OV-size video (32 x 196 x 3584,
  ``replicate.microbench.tango.correlated_video``: scene cut every 8 frames, three noise levels), how many
  kept tokens, merged anchors and position ids differ (FastVID at 10 %, global features one
  direction per scene; VisionZip at 20 and 40 tokens per frame), and STTS's attention bias on random
  scores at Molmo2's 27 x 27 grid.

Measured numbers of this machine's code; no accuracy (that needs a model: the cpu tier's grid).
"""
from __future__ import annotations

import argparse
import json

import torch

from costmodel.cli import Parser, entry_point, out_file

FIDELITIES = ("released", "project")


def analytic() -> dict:
    from costmodel import load_arch, paper_flops
    from methods.baselines.fastvid import fastvid_frame_budget
    from methods.nominal import nominal_schedule
    from methods.stts import stts_pruned_groups

    out: dict = {"pdrop": [], "fastv": [], "fastvid_per_frame": [], "stts_pruned_groups": []}
    for model in ("llava-onevision-7b", "llava-video-7b"):
        arch = load_arch(model)
        for lam, layers in ((0.5, None), (0.5, (2, 7, 14)), (0.4, (2, 10))):
            row = {"model": model, "lam": lam, "layers": layers}
            for fid in FIDELITIES:
                s = nominal_schedule(arch, "pdrop", lam=lam, fidelity=fid, **({"layers": layers} if layers else {}))
                row[fid] = {"tflops": paper_flops(arch, s) / 1e12, "visual": sorted(set(s.llm_visual), reverse=True)}
            out["pdrop"].append(row)
        for keep in (0.2, 0.5):
            row = {"model": model, "k": 2, "keep": keep}
            for fid in FIDELITIES:
                s = nominal_schedule(arch, "fastv", k=2, keep=keep, fidelity=fid)
                row[fid] = {"tflops": paper_flops(arch, s) / 1e12, "kept": s.llm_visual[-1]}
            out["fastv"].append(row)
    ov = load_arch("llava-onevision-7b")
    for r in (0.10, 0.15, 0.20, 0.25):
        row = {"retention": r, "table_budget_per_frame": nominal_schedule(ov, "fastvid", retention=r,
                                                                          budget="per_frame").llm_visual[0] // 32}
        row["table_tflops"] = paper_flops(ov, nominal_schedule(ov, "fastvid", retention=r, budget="per_frame")) / 1e12
        for fid in FIDELITIES:
            sal, ctx = fastvid_frame_budget(196, r, 0.4, fid)
            # a pre-LLM schedule keeping sal + ctx per frame (the upper bound; DTM's floor division can keep fewer)
            s = nominal_schedule(ov, "visionzip", retention=r, tokens_per_frame=sal + ctx)
            row[fid] = {"per_frame": sal + ctx, "salient": sal, "contextual": ctx, "tflops": paper_flops(ov, s) / 1e12}
        out["fastvid_per_frame"].append(row)
    for topk in (0.3, 0.5):
        for frames in (32, 64, 128, 256):
            out["stts_pruned_groups"].append({"topk": topk, "frames": frames, "groups": 81 * frames,
                                              "exact": 81 * topk * frames,
                                              **{fid: stts_pruned_groups(81, topk, frames, fid) for fid in FIDELITIES}})
    return out


def _video(seed: int = 0, dim: int = 3584):
    from replicate.microbench.tango import correlated_video

    t = correlated_video(dim=dim, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    F, N, _ = t.features.shape
    sal = torch.rand(F, N, generator=g)
    t.saliency["vit_attn_received"] = sal / sal.sum(-1, keepdim=True)
    t.keys = torch.randn(F, N, 72, generator=g)
    # DySeg's global features: one direction per 8-frame scene plus a little per-frame noise, so the
    # segments follow the scenes (plus DySeg's c - 1 = 7 lowest-similarity cuts)
    scene = torch.eye(1152)[torch.arange(F) // 8]
    t.global_features = scene + 0.005 * torch.randn(F, 1152, generator=g)   # cosine ~0.97 in a scene
    return t


def _fastvid_effect(tokens, retention: float) -> dict:
    from methods.registry import get_method

    red = {fid: get_method("fastvid", retention=retention, fidelity=fid).reduce(tokens) for fid in FIDELITIES}
    r, p = red["released"], red["project"]
    common = sorted(set(r.source.tolist()) & set(p.source.tolist()))
    ri = {s: i for i, s in enumerate(r.source.tolist())}
    pi = {s: i for i, s in enumerate(p.source.tolist())}
    diff = [float((r.features[ri[s]] - p.features[pi[s]]).abs().max()) for s in common]
    return {"kept": {"released": r.num_tokens, "project": p.num_tokens}, "segments": r.info["segments"],
            "per_frame": {"released": [r.info["salient_per_frame"], r.info["context_per_frame"]],
                          "project": [p.info["salient_per_frame"], p.info["context_per_frame"]]},
            "common_positions": len(common), "salient_tokens": r.info["salient_per_frame"] * tokens.frames,
            "tokens_differing": sum(d > 1e-5 for d in diff), "max_abs_difference": max(diff)}


def full_size(dim: int = 3584) -> dict:
    from methods.registry import get_method
    from methods.stts import attention_bias

    tokens = _video(dim=dim)
    out: dict = {"video": f"replicate.microbench.tango.correlated_video(seed=0): 32 x 196 x {dim}, scene cut every 8 frames"}
    with torch.inference_mode():
        for r_ in (0.10, 0.25):   # 25 %: int and round agree (49 per frame), only the DTM rule differs
            out[f"fastvid_r{round(100 * r_)}"] = _fastvid_effect(tokens, r_)
        for b in (20, 40):
            red = {fid: get_method("visionzip", retention=0.1, tokens_per_frame=b, fidelity=fid).reduce(tokens)
                   for fid in FIDELITIES}
            r, p = red["released"], red["project"]
            same_set = len(set(r.source.tolist()) & set(p.source.tolist()))
            moved = int((r.source != torch.sort(r.source).values).sum())
            out[f"visionzip_{b}_per_frame"] = {"kept": r.num_tokens, "kept_in_both": same_set,
                                               "released_tokens_off_position_order": moved}
        g = torch.Generator().manual_seed(0)
        scores = torch.rand(64, 81, generator=g)
        d = attention_bias(scores, (27, 27)) - attention_bias(scores, (27, 27), fidelity="project")
        out["stts_bias_64x27x27_random_scores"] = {"max_abs_log_bias_difference": float(d.abs().max()),
                                                   "mean_abs_log_bias_difference": float(d.abs().mean())}
    return out


@entry_point("python -m replicate.fidelity_effects")
def main(argv=None) -> int:
    from replicate.io import write_json
    from replicate.provenance import provenance

    p = Parser(prog="python -m replicate.fidelity_effects", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=out_file, help="output JSON path")
    args = p.parse_args(argv)
    result = {"provenance": provenance(device="cpu", dtype="float32"), "analytic": analytic(), "full_size": full_size()}
    write_json(args.out, result)
    print(json.dumps(result["full_size"], indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
