"""Tango's tables: FLOPs and token counts per backbone (analytic), the README's A800 TTFT split
beside the cost model's prediction, and the measured effect of the released code's behaviours A/B.

- ``flops_tokens``: LLaVA-OV-7B (Tango pre-LLM), LLaVA-Video-7B (pre-LLM alone and with the intra-LLM
  stage, K = 18, keep 0.5, the paper's Video setting) and Qwen2.5-VL-7B (pre-LLM) at r = 0.10 / 0.15 /
  0.20: visual tokens entering the LLM, the layer-averaged count, FLOPs in the paper convention and
  the exact one (cost model; ``replicate.analytic``). Tango prints no FLOPs of its own; these are
  computed, never reported.
- ``ttft_split``: vision / other / LLM prefill of vanilla and Tango at r = 0.10 on LLaVA-OV-7B
  predicted by the roofline model on the A800 entry, beside the README reference
  (``replicate/reported/tango_readme_efficiency.csv``). The model's "other" is projector + pooling
  only; Tango's own pruning time is not modelled (it is measured by ``replicate.microbench.tango``).
- ``behaviour_effects``: tango_reduce at ``released`` and ``paper`` fidelity on the same synthetic
  OV-size video: tokens kept, static positions, shared kept positions, context rows displaced by
  behaviour B, and the paper-convention FLOPs of the kept count.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from replicate.analytic import Setting, compute_rows

HERE = Path(__file__).resolve().parent
README_CSV = HERE / "reported" / "tango_readme_efficiency.csv"
BACKBONES = ("llava-onevision-7b", "llava-video-7b", "qwen2.5-vl-7b")
RETENTIONS = (0.10, 0.15, 0.20)
#: (model, method, options) rows of the table: Video appears pre-LLM only and with the intra stage
VARIANTS = (("llava-onevision-7b", "tango", ()), ("llava-video-7b", "tango", ()),
            ("llava-video-7b", "tango-intra", (("k", 18),)), ("qwen2.5-vl-7b", "tango", ()))
FLOPS_COLUMNS = ["model", "method", "retention", "frames", "tokens_per_frame", "vanilla_visual",
                 "llm_visual_first", "llm_visual_mean", "layer_avg_ratio_pct", "stages", "paper_tflops",
                 "vanilla_paper_tflops", "paper_ratio_pct", "exact_prefill_tflops", "exact_total_tflops"]


def flops_tokens(retentions: Sequence[float] = RETENTIONS, rounding: str = "per_frame_ceil") -> list[dict]:
    """One row per (backbone variant, retention) with token counts and both FLOPs conventions."""
    from costmodel.arch import load_arch

    settings = [Setting(m, meth, load_arch(m).default_frames, float(r), opts)
                for m, meth, opts in VARIANTS for r in retentions]
    rows, _ = compute_rows(settings, rounding)
    out = []
    for row in rows:
        if row["method"] == "vanilla":
            continue
        out.append({
            "model": row["model"], "method": row["method"], "retention": row["retention"],
            "frames": row["frames"], "tokens_per_frame": load_arch(row["model"]).tokens_per_frame,
            "vanilla_visual": row["vanilla_visual"], "llm_visual_first": row["llm_visual_first"],
            "llm_visual_mean": round(row["llm_visual_mean"], 2),
            "layer_avg_ratio_pct": round(100 * row["llm_visual_mean"] / row["vanilla_visual"], 3),
            "stages": row["stages"], "paper_tflops": round(row["paper_tflops"], 3),
            "vanilla_paper_tflops": round(row["vanilla_paper_tflops"], 3),
            "paper_ratio_pct": round(row["paper_ratio_pct"], 3),
            "exact_prefill_tflops": round(row["exact_prefill_tflops"], 3),
            "exact_total_tflops": round(row["exact_total_tflops"], 3),
        })
    return out


def read_readme_reference(path: Path = README_CSV) -> dict[str, float]:
    """The README efficiency table (docs/sources.md#claim-t3) as {quantity: value}."""
    with open(path, newline="") as fh:
        return {r["quantity"]: float(r["value"]) for r in csv.DictReader(fh)}


def ttft_split(hardware: str = "a800", dtype: str = "bf16", retention: float = 0.10,
               text_tokens: int = 100) -> list[dict]:
    """Predicted vision / other / prefill ms (vanilla and Tango, LLaVA-OV-7B, 32 frames) and the
    README's measured split for Tango (the README gives no vanilla split)."""
    from costmodel.arch import load_arch
    from costmodel.latency import predict_latency
    from methods.nominal import nominal_schedule

    arch = load_arch("llava-onevision-7b")
    ref = read_readme_reference()
    rows = []
    for method, r in (("vanilla", None), ("tango", retention)):
        sched = nominal_schedule(arch, method, frames=arch.default_frames, retention=r,
                                 text_tokens=text_tokens, **({"budget": "per_frame"} if r else {}))
        p = predict_latency(arch, sched, hardware, dtype)
        rows.append({"source": f"predicted ({hardware}, {dtype}, efficiency 1 roofline)", "method": method,
                     "vision_ms": 1e3 * p["vision_s"], "other_ms": 1e3 * p["other_s"],
                     "llm_ms": 1e3 * p["prefill_s"], "ttft_ms": 1e3 * p["ttft_s"]})
    rows.append({"source": "reported (README, 8x A800, lmms-eval VideoMME)", "method": "tango",
                 "vision_ms": ref["vit_ms"], "other_ms": ref["other_ms"], "llm_ms": ref["llm_prefill_ms"],
                 "ttft_ms": ref["ttft_ms"]})
    return rows


def _displaced(released, paper) -> int:
    """Rows whose feature differs between the fidelities at the same kept position (behaviour B)."""
    same = (released.features == paper.features).all(-1)
    return int((~same).sum())


def behaviour_effects(retentions: Sequence[float] = RETENTIONS, dim: int = 3584, seed: int = 0,
                      frames: int = 32) -> list[dict]:
    """Measured effect of behaviours A and B on the benchmark video (replicate.microbench.tango)."""
    from costmodel.arch import load_arch
    from costmodel.flops import paper_flops
    from methods.nominal import nominal_schedule
    from replicate.microbench.tango import correlated_video
    from methods.tango import TangoConfig, tango_reduce

    arch = load_arch("llava-onevision-7b")
    tokens = correlated_video(frames=frames, dim=dim, seed=seed)
    vanilla = paper_flops(arch, nominal_schedule(arch, "vanilla", frames=tokens.frames))
    rows = []
    for r in retentions:
        rel = tango_reduce(tokens, TangoConfig(retention=r))
        pap = tango_reduce(tokens, TangoConfig(retention=r, fidelity="paper"))
        shared = len(set(rel.source.tolist()) & set(pap.source.tolist()))
        for name, red in (("released", rel), ("paper", pap)):
            fl = _flops_for_kept(arch, tokens.frames, red.num_tokens)
            rows.append({"retention": r, "fidelity": name, "tau": red.info["tau"],
                         "static_tau": red.info["static_tau"], "segments": len(red.info["segments"]),
                         "static_positions": sum(red.info["static_positions"]), "tokens_kept": red.num_tokens,
                         "shared_with_other": shared,
                         "rows_displaced_by_b": _displaced(rel, pap) if name == "released" and
                         torch_equal(rel.source, pap.source) else None,
                         "paper_tflops": round(fl / 1e12, 4), "paper_ratio_pct": round(100 * fl / vanilla, 3)})
    return rows


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def _flops_for_kept(arch, frames: int, kept: int) -> float:
    """Paper-convention FLOPs with ``kept`` visual tokens in every layer (the measured count)."""
    from costmodel.flops import paper_flops
    from methods.nominal import nominal_schedule

    full = frames * arch.tokens_per_frame
    sched = nominal_schedule(arch, "tango", frames=frames, retention=kept / full, budget="global")
    if sched.llm_visual[0] != kept:
        raise AssertionError(f"schedule has {sched.llm_visual[0]} tokens, expected {kept}")
    return paper_flops(arch, sched)


def write_csv(rows: list[dict], path: str | Path, columns: Sequence[str] | None = None) -> None:
    """Write rows atomically (a failed run leaves no half-written table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(columns or (rows[0].keys() if rows else []))
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def markdown(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    cols = list(columns or rows[0].keys())
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main_analytic(out_dir: str | Path) -> dict[str, Any]:
    """Analytic tables: flops_tokens.{csv,md} and ttft_split.{csv,md} under out_dir."""
    out = Path(out_dir)
    ft, tt = flops_tokens(), ttft_split()
    write_csv(ft, out / "flops_tokens.csv", FLOPS_COLUMNS)
    (out / "flops_tokens.md").write_text(markdown(ft, FLOPS_COLUMNS))
    write_csv(tt, out / "ttft_split.csv")
    (out / "ttft_split.md").write_text(markdown(tt))
    return {"flops_tokens": ft, "ttft_split": tt}


#: SynthVideoQA variants: (label, TangoConfig options)
SYNTH_VARIANTS = (("released", {}), ("paper", {"fidelity": "paper"}),
                  ("released-no-floor", {"salient_floor": False}))


def synth_grid(model_dir: str | Path, retentions: Sequence[float] = (0.10, 0.25, 0.50), *,
               n_samples: int = 1000, seed: int = 0, threads: int = 1) -> list[dict]:
    """Accuracy of Tango on the trained tiny model per fidelity variant (cpu tier; measured)."""
    from replicate.harness.accuracy import run_accuracy_cell

    rows = []
    for label, opts in SYNTH_VARIANTS:
        for r in retentions:
            res = run_accuracy_cell(model_dir, "tango", opts, r, n_samples=n_samples, seed=seed,
                                    threads=threads, progress=False)
            rows.append({"variant": label, "retention": r, "status": res.get("status"),
                         "accuracy": res.get("accuracy"), "n": res.get("n", res.get("n_requested")),
                         "tokens_per_frame": res.get("tokens_per_frame"), "options": json_dumps(opts)})
    return rows


def json_dumps(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True)
