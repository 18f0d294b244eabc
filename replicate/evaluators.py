"""Claim evaluators: a registry keyed by the name a claim gives in `evaluator:`.

An evaluator reads the result files a rule wrote (never recomputes silently) and returns the
measured value with its evidence. New tiers plug in by registering more names, e.g. in a module
that the workflow imports::

    @register("cpu_accuracy", tier="cpu", inputs=("results/embedded/accuracy.csv",))
    def cpu_accuracy(claim, ctx): ...

and its rule file appends the module to ``EVALUATOR_PLUGINS`` (see replicate/README.md), so both
the Snakefile (rule inputs) and the verify jobs import it.

`inputs` are paths relative to the workflow's working directory; verify.py marks the claim
"not-run" naming the missing file when one is absent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

ANALYTIC_FLOPS = "results/analytic/flops.csv"
ANALYTIC_SCHEDULES = "results/analytic/flops.json"


@dataclass
class Measurement:
    measured: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What an evaluator may read: the results directory and the config; cached frames."""
    results_root: Path
    config: Mapping[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        return self.results_root / rel

    def csv(self, rel: str):
        if rel not in self.cache:
            import pandas as pd

            self.cache[rel] = pd.read_csv(self.path(rel))
        return self.cache[rel]

    def json(self, rel: str):
        if rel not in self.cache:
            import json

            self.cache[rel] = json.loads(self.path(rel).read_text())
        return self.cache[rel]


@dataclass(frozen=True)
class Evaluator:
    name: str
    tier: str
    fn: Callable[[Mapping[str, Any], Context], Measurement]
    inputs: tuple[str, ...] = ()


EVALUATORS: dict[str, Evaluator] = {}


def register(name: str, *, tier: str, inputs: tuple[str, ...] = ()) -> Callable:
    def wrap(fn: Callable[[Mapping[str, Any], Context], Measurement]):
        if name in EVALUATORS:
            raise ValueError(f"evaluator {name!r} is already registered")
        EVALUATORS[name] = Evaluator(name, tier, fn, tuple(inputs))
        return fn
    return wrap


def get(name: str | None) -> Evaluator | None:
    return EVALUATORS.get(name) if name else None


def load_plugins(modules) -> None:
    """Import modules that register more evaluators (a rule file lists them in EVALUATOR_PLUGINS)."""
    import importlib

    for name in modules:
        importlib.import_module(name)


def inputs_for_tiers(tiers: set[str]) -> list[str]:
    """Result files every registered evaluator of the given tiers reads (for rule inputs)."""
    return sorted({p for e in EVALUATORS.values() if e.tier in tiers for p in e.inputs})


# ---------------------------------------------------------------------------- analytic tier
def _row(claim: Mapping[str, Any], ctx: Context):
    from .analytic import lookup, setting_from_claim

    setting = setting_from_claim(claim["setting"])
    return setting, lookup(ctx.csv(ANALYTIC_FLOPS), setting)


def _schedule_evidence(setting, row, ctx: Context) -> dict[str, Any]:
    sched = ctx.json(ANALYTIC_SCHEDULES).get(setting.key, {}).get("schedule", {})
    return {
        "result_file": ANALYTIC_FLOPS,
        "key": setting.key,
        "budget_rounding": row["budget_rounding"],
        "retention_effective": None if row["retention_effective"] != row["retention_effective"] else float(row["retention_effective"]),
        "llm_visual_per_layer": row["stages"],
        "vision_tokens_first_last_layer": [int(row["vit_tokens_full"]), int(row["vit_tokens_last"])],
        "frames": int(row["frames"]),
        "schedule_label": sched.get("label"),
        "schedule_notes": sched.get("notes"),
    }


def _candidate_evidence(claim: Mapping[str, Any], ctx: Context, value_of: Callable[[Any], float]) -> dict[str, Any]:
    """Values of the candidate configurations of a claim whose configuration is unpublished (rows the
    rule analytic_flops computed from the claim's `config_unpublished.candidates`)."""
    from .analytic import candidate_settings, lookup

    unpublished = claim.get("config_unpublished")
    if not unpublished:
        return {}
    frame = ctx.csv(ANALYTIC_FLOPS)
    values = [{"options": dict(s.options), "key": s.key, "value": value_of(lookup(frame, s))}
              for s in candidate_settings(claim)]
    return {"config_unpublished": {"note": unpublished["note"], "candidates": values}}


@register("paper_flops", tier="analytic", inputs=(ANALYTIC_FLOPS, ANALYTIC_SCHEDULES))
def paper_flops(claim, ctx):
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    ev.update(_candidate_evidence(claim, ctx, lambda r: float(r["paper_tflops"])))
    ev.update(convention="paper (FastV formula, visual tokens, LLM prefill)",
              paper_tflops=float(row["paper_tflops"]),
              paper_tflops_global_round=float(row["paper_tflops_global_round"]),
              exact_prefill_tflops=float(row["exact_prefill_tflops"]),
              exact_total_tflops=float(row["exact_total_tflops"]))
    return Measurement(float(row["paper_tflops"]), ev)


@register("paper_flops_ratio", tier="analytic", inputs=(ANALYTIC_FLOPS, ANALYTIC_SCHEDULES))
def paper_flops_ratio(claim, ctx):
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    ev.update(_candidate_evidence(claim, ctx, lambda r: 100 * float(r["paper_tflops"]) / float(r["vanilla_paper_tflops"])))
    t, v = float(row["paper_tflops"]), float(row["vanilla_paper_tflops"])
    ev.update(convention="paper", paper_tflops=t, vanilla_paper_tflops=v,
              ratio_pct=100 * t / v,
              ratio_pct_from_printed_precision=100 * round(t, 1) / round(v, 1),
              ratio_fraction=t / v)
    return Measurement(100 * t / v, ev)


@register("llm_input_reduction", tier="analytic", inputs=(ANALYTIC_FLOPS, ANALYTIC_SCHEDULES))
def llm_input_reduction(claim, ctx):
    """Percent of the video feature tokens removed before LLM layer 0 (vs vanilla, same frames)."""
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    kept, full = int(row["llm_visual_first"]), int(row["vanilla_visual"])
    ev.update(visual_tokens_entering_llm=kept, vanilla_visual_tokens=full,
              layer_averaged_kept_fraction=float(row["llm_visual_mean"]) / full)
    return Measurement(100 * (1 - kept / full), ev)


@register("vit_tail_reduction", tier="analytic", inputs=(ANALYTIC_FLOPS, ANALYTIC_SCHEDULES))
def vit_tail_reduction(claim, ctx):
    """Percent of ViT token slots removed in the last vision layer (packed bins vs all frames)."""
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    first, last = int(row["vit_tokens_full"]), int(row["vit_tokens_last"])
    ev.update(vit_tokens_first_layer=first, vit_tokens_last_layer=last)
    return Measurement(100 * (1 - last / first), ev)


# ---------------------------------------------------------------------------- Stage I-II output
HOLITOM_BENCH = "results/bench/holitom_stages.json"


@register("bench_outer_reduction", tier="analytic", inputs=(HOLITOM_BENCH, ANALYTIC_FLOPS, ANALYTIC_SCHEDULES))
def bench_outer_reduction(claim, ctx):
    """Percent of the video tokens HoliTom's Stages I-II remove, from their real output (rule
    holitom_bench runs methods.holitom.holitom_reduce on a full-size input and counts what it kept).
    Not run when the bench ran at a smaller shape than the claim's setting (e.g. the smoke profile)."""
    s = claim["setting"]
    bench = ctx.json(HOLITOM_BENCH)
    shape = bench["shape"]
    want_frames, per_frame = int(s["frames"]), 196  # LLaVA-OV: 14 x 14 pooled tokens per frame
    got_per_frame = int(shape["grid"][0]) * int(shape["grid"][1])
    if int(shape["frames"]) != want_frames or got_per_frame != per_frame or int(shape["dim"]) != 3584:
        raise ValueError(f"bench ran at frames={shape['frames']}, grid={shape['grid']}, dim={shape['dim']}; the "
                         f"claim's setting is {want_frames} frames x {per_frame} tokens x 3584 (full size)")
    key = f"r{float(s['retention']):.2f}"
    if key not in bench["results"]:
        raise ValueError(f"no retention {key} in {HOLITOM_BENCH} (have {sorted(bench['results'])})")
    cell = bench["results"][key]
    kept, total = int(cell["kept_tokens"]), int(cell["input_tokens"])
    _, nominal = _row(claim, ctx)
    return Measurement(100.0 * (1 - kept / total), {
        "cost_model_prediction": 100.0 * (1 - int(nominal["llm_visual_first"]) / int(nominal["vanilla_visual"])),
        "cost_model_basis": f"nominal schedule {nominal['key']} ({nominal['budget_rounding']} budget)",
        "result_file": HOLITOM_BENCH, "kept_tokens": kept, "input_tokens": total,
        "kept_per_frame": cell.get("kept_per_frame"), "temporally_reduced": cell.get("temporally_reduced"),
        "tau": cell.get("tau"), "shape": shape, "input": bench.get("input"),
        "note": "real Stage I-II output (methods.holitom.holitom_reduce); input features are random with "
                "static windows (stated in the bench JSON), not a real video's SigLIP features"})

# STTS's measured packing (analytic) and gpu speed-up evaluators live beside their harness; registered
# here so every analytic claim's evaluator exists without the workflow's plugin list.
from . import stts_evaluators  # noqa: E402,F401
