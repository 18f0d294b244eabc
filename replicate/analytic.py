"""The analytic tier: FLOPs of nominal token schedules for the papers' real architectures.

One row per setting (model x method x frames x retention x options) with both conventions of the
cost model (``paper``: FastV formula over visual tokens, LLM prefill; ``exact``: GQA, SwiGLU,
causal attention, vision tower, projector, LM head). The rows come from the config grid and from
the settings of every analytic claim, so each claim finds its row in the file a rule wrote.

Budget rounding. The cost model's nominal pre-LLM budget is round(r·F·N). HoliTom's FLOPs column
is reproduced only with a whole-token budget *per frame*, ceil(r·N)·F (20/30/40/49 of 196 tokens
per frame at 10/15/20/25 %, matching the VisionZip adaptation's SPATIAL_TOKENS 20/30/40/50 up to
the 25 % case where 49 = 0.25·196 exactly): 7.0 T at 20 % needs 1280 tokens, round(0.2·6272) =
1254 gives 6.89 T. ``budget_rounding: per_frame_ceil`` (the default) applies that rule by
handing the cost model the effective retention ceil(r·N)/N; ``global_round`` uses the cost
model's rule unchanged. Both numbers are written so the choice is visible.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

BUDGET_ROUNDINGS = ("per_frame_ceil", "global_round")
# budget_rounding -> the `budget` of Method.nominal_schedule (for methods whose retention is a
# pre-LLM budget of whole tokens: Method.pre_llm_budget)
_NOMINAL_BUDGET = {"per_frame_ceil": "per_frame", "global_round": "global"}
# Which claim-setting keys are method options, and under what name: the method's own notation
# (``Method.notation``, e.g. HoliTom's k and r: docs/sources.md#holitom-stage-iii), restricted to
# the options its nominal schedule reads (``Method.schedule_options``): a row is keyed by what
# changes its FLOPs. The options, their defaults and the priced setting (PruneVid: pre-LLM stages
# only) are the Method's own (``Method.from_setting``).

COLUMNS = ["key", "model", "method", "frames", "retention", "retention_effective", "options",
           "budget_rounding", "llm_visual_first", "llm_visual_last", "llm_visual_mean", "vanilla_visual",
           "stages", "vit_tokens_full", "vit_tokens_last", "paper_tflops", "paper_tflops_global_round",
           "vanilla_paper_tflops", "paper_ratio_pct", "exact_prefill_tflops", "exact_total_tflops",
           "exact_vision_tflops", "exact_prefill_over_paper"]


def _shortest(x: float) -> str:
    """Shortest text that reads back as ``x`` ("0.1", "1", "0.1234567"): lossless where ``:g`` kept 6
    significant digits (and equal to it wherever 6 digits suffice, so existing keys are unchanged)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Setting:
    """One row: ``options`` are the setting's (the papers' symbols or option names); ``newline``
    the model's layout where the options a paper states for it apply (planning's paper-tier cells),
    None in the analytic tables, which name such variants themselves (tango-intra)."""

    model: str
    method: str
    frames: int
    retention: float | None
    options: tuple[tuple[str, Any], ...] = ()
    newline: str | None = None

    @property
    def key(self) -> str:
        r = "full" if self.retention is None else f"r{_shortest(self.retention)}"
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.model}|{self.method}|F{self.frames}|{r}" + (f"|{opts}" if opts else "")

    def vanilla(self) -> "Setting":
        return Setting(self.model, "vanilla", self.frames, None)


def arch_of(model: str):
    """The costmodel ArchSpec of a model name (KeyError naming the allowed ones)."""
    from costmodel.arch import ARCH_NAMES, load_arch

    if model not in ARCH_NAMES:
        raise KeyError(f"unknown model {model!r}; allowed: {', '.join(ARCH_NAMES)}")
    return load_arch(model)


def setting_from_claim(setting: Mapping[str, Any]) -> Setting:
    """The analytic Setting of a claim's `setting` block (frames default to the arch's)."""
    model, method = setting["model"], setting.get("method", "vanilla")
    frames = setting.get("frames") or arch_of(model).default_frames
    options = dict(setting.get("options") or {})
    for name in _schedule_symbols(method):
        if name in setting:
            options[name] = setting[name]
    retention = setting.get("retention")
    return Setting(model, method, int(frames), None if retention is None else float(retention),
                   tuple(sorted(options.items())))


def _schedule_symbols(method: str) -> list[str]:
    """The papers' symbols a claim setting may state for ``method`` that change its nominal schedule."""
    from methods import registry

    try:
        notation = registry.notation(method)
        schedule = registry.method_info(registry.resolve(method)[0])["schedule_options"]
    except ValueError:  # not a method (a baseline such as best-prior): no options
        return []
    return [sym for sym, opt in notation.items() if opt in schedule]


def grid_settings(grid: Iterable[Mapping[str, Any]]) -> list[Setting]:
    """Expand config `analytic.grid` entries (models x methods x retentions x frames)."""
    out: list[Setting] = []
    for entry in grid:
        frames_list = entry.get("frames") or [None]
        for model in entry["models"]:
            for frames in frames_list:
                f = int(frames or arch_of(model).default_frames)
                for method in entry["methods"]:
                    if method == "vanilla":
                        out.append(Setting(model, method, f, None))
                        continue
                    opts = tuple(sorted((entry.get("options", {}).get(method) or {}).items()))
                    for r in entry["retentions"]:
                        out.append(Setting(model, method, f, float(r), opts))
    return out


def candidate_settings(claim: Mapping[str, Any]) -> list[Setting]:
    """Settings of the candidate configurations of a claim whose configuration is unpublished."""
    out = []
    for cand in (claim.get("config_unpublished") or {}).get("candidates", []):
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in cand.items()}
        out.append(setting_from_claim({**claim["setting"], "options": {**claim["setting"].get("options", {}), **opts}}))
    return out


def claim_settings(claims: Iterable[Mapping[str, Any]]) -> list[Setting]:
    out = []
    for c in claims:
        if c.get("tier") == "analytic":
            out += [setting_from_claim(c["setting"]), *candidate_settings(c)]
    return out


def unique(settings: Iterable[Setting]) -> list[Setting]:
    """Deduplicate and add each setting's vanilla baseline (ratios need it)."""
    seen: dict[str, Setting] = {}
    for s in settings:
        for t in (s.vanilla(), s):
            seen.setdefault(t.key, t)
    return sorted(seen.values(), key=lambda s: (s.model, s.frames, s.method != "vanilla", s.method,
                                                 s.retention or 1.0, s.options))


def method_options(setting: Setting) -> dict[str, Any]:
    """The Method options of ``setting``: its options with the papers' symbols renamed by the
    method's notation (a variant's own: tango-intra's k -> intra_k); its retention is passed beside
    them to ``Method.from_setting`` (methods.nominal)."""
    from methods import registry

    names = registry.notation(setting.method)
    return {names.get(k, k): v for k, v in setting.options}


def method_of(setting: Setting):
    """The Method instance whose nominal schedule is ``setting``'s (``Method.from_setting`` on the
    architecture, priced as the papers' tables price it: methods.nominal)."""
    from methods.nominal import nominal_method

    return nominal_method(arch_of(setting.model), setting.method, setting.retention, newline=setting.newline,
                          priced=True, **method_options(setting))


def _has_budget(setting: Setting) -> bool:
    return setting.retention is not None and method_of(setting).pre_llm_budget


def budget_options(setting: Setting, rounding: str) -> dict[str, str]:
    """nominal_schedule options that apply ``rounding`` to ``setting`` (empty if it has no budget)."""
    if rounding not in BUDGET_ROUNDINGS:
        raise ValueError(f"unknown budget_rounding {rounding!r}; allowed: {BUDGET_ROUNDINGS}")
    return {"budget": _NOMINAL_BUDGET[rounding]} if _has_budget(setting) else {}


def effective_retention(setting: Setting, tokens_per_frame: int, rounding: str) -> float | None:
    """The kept fraction the rounding implies (per_frame_ceil: ceil(r*N)/N), for the record."""
    from costmodel.nominal import kept_tokens

    if not budget_options(setting, rounding) or rounding == "global_round":
        return setting.retention
    return kept_tokens(setting.retention, 1, tokens_per_frame, "per_frame") / tokens_per_frame


def schedule_for(setting: Setting, rounding: str = "per_frame_ceil"):
    arch = arch_of(setting.model)
    return arch, _nominal(arch, setting, rounding, {"frames": setting.frames})


def stage_summary(per_layer: Sequence[int]) -> str:
    """Compress a per-layer count tuple: (640,)*18 + (320,)*10 -> '0-17:640 18-27:320'."""
    parts, start = [], 0
    for i in range(1, len(per_layer) + 1):
        if i == len(per_layer) or per_layer[i] != per_layer[start]:
            parts.append(f"{start}-{i - 1}:{per_layer[start]}")
            start = i
    return " ".join(parts)


def compute_rows(settings: Sequence[Setting], rounding: str = "per_frame_ceil") -> tuple[list[dict], dict]:
    """Rows of the FLOPs table and, per key, the schedule used (for evidence)."""
    from costmodel.flops import exact_costs, paper_flops

    rows, schedules = [], {}
    vanilla_cache: dict[str, tuple[int, float]] = {}
    for s in unique(settings):
        arch, sched = schedule_for(s, rounding)
        _, sched_global = schedule_for(s, "global_round")
        paper = paper_flops(arch, sched) / 1e12
        exact = exact_costs(arch, sched, causal=True)
        vkey = s.vanilla().key
        if s.method == "vanilla":
            vanilla_cache[vkey] = (sched.llm_visual[0], paper)
        v_visual, v_paper = vanilla_cache[vkey]
        prefill = exact.total("prefill") / 1e12
        row = {
            "key": s.key, "model": s.model, "method": s.method, "frames": s.frames,
            "retention": s.retention, "retention_effective": effective_retention(s, arch.tokens_per_frame, rounding),
            "options": json.dumps(dict(s.options), sort_keys=True), "budget_rounding": rounding,
            "llm_visual_first": sched.llm_visual[0], "llm_visual_last": sched.llm_visual[-1],
            "llm_visual_mean": sum(sched.llm_visual) / len(sched.llm_visual), "vanilla_visual": v_visual,
            "stages": stage_summary(sched.llm_visual),
            "vit_tokens_full": sched.vision[0].total if sched.vision else 0,
            "vit_tokens_last": sched.vision[-1].total if sched.vision else 0,
            "paper_tflops": paper, "paper_tflops_global_round": paper_flops(arch, sched_global) / 1e12,
            "vanilla_paper_tflops": v_paper, "paper_ratio_pct": 100 * paper / v_paper,
            "exact_prefill_tflops": prefill, "exact_total_tflops": exact.total() / 1e12,
            "exact_vision_tflops": exact.total("vision") / 1e12,
            "exact_prefill_over_paper": prefill / paper if paper else None,
        }
        rows.append(row)
        schedules[s.key] = {"schedule": sched.to_dict(), "arch": s.model, "notes": list(sched.notes)}
    return rows, schedules


def flops_frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS)


def exact_vs_paper(frame):
    """Exact-vs-paper comparison: what the papers' convention leaves out, per setting."""
    import pandas as pd

    out = pd.DataFrame({
        "model": frame["model"], "method": frame["method"], "frames": frame["frames"],
        "retention": frame["retention"],
        "paper_tflops": frame["paper_tflops"].round(3),
        "exact_prefill_tflops": frame["exact_prefill_tflops"].round(3),
        "exact_vision_tflops": frame["exact_vision_tflops"].round(3),
        "exact_total_tflops": frame["exact_total_tflops"].round(3),
        "prefill_exact_over_paper": frame["exact_prefill_over_paper"].round(3),
        "vision_share_of_exact": (frame["exact_vision_tflops"] / frame["exact_total_tflops"]).round(3),
    })
    return out


def lookup(frame, setting: Setting):
    """The row of `setting` in a FLOPs frame; KeyError naming the key when it is absent."""
    hit = frame[frame["key"] == setting.key]
    if hit.empty:
        raise KeyError(f"no analytic row for {setting.key!r} in the FLOPs table; the rule analytic_flops "
                       f"computes the config grid plus every analytic claim's setting")
    return hit.iloc[0]


# ---------------------------------------------------------------------------- latency predictions
PREDICTION_TEXT_TOKENS = 100   # prompt template + question, an assumption stated in every row
PREDICTION_DECODE_STEPS = 64
PREDICTION_COLUMNS = ["id", "model", "method", "baseline", "frames", "retention", "hardware", "dtype", "attention",
                      "hardware_basis", "text_tokens", "decode_steps", "predicted", "predicted_unit",
                      "baseline_ttft_ms", "method_ttft_ms", "ttft_speedup", "vision_ms", "other_ms", "llm_ms",
                      "baseline_decode_tok_s", "method_decode_tok_s", "decode_speedup", "llm_only_ttft_bound",
                      "reported", "quantity"]
#: gpu-tier quantities the roofline predicts (a training step is not a forward pass: not predicted)
PREDICTED_QUANTITIES = ("ttft_speedup", "decode_speedup", "efficiency_speedup", "latency_ms", "throughput_tok_s")
DEFAULT_TARGET = {"hardware": "h100-sxm", "dtype": "bf16", "attention": "sdpa",
                  "basis": "config default (no `predictions` entry for this paper)"}


def _ttft_part(claim_id: str) -> str:
    parts = claim_id.split("-")
    for p, col in (("vit", "vision_ms"), ("other", "other_ms"), ("llm", "llm_ms")):
        if p in parts:
            return col
    return "method_ttft_ms"


def _predicted_value(claim: Mapping[str, Any], row: Mapping[str, Any]) -> tuple[float, str]:
    q = claim["quantity"]
    if q in ("ttft_speedup", "efficiency_speedup"):
        return row["ttft_speedup"], "x"
    if q == "decode_speedup":
        return row["decode_speedup"], "x"
    if q == "latency_ms":
        return row[_ttft_part(claim["id"])], "ms"
    return row["method_decode_tok_s"], "tok/s"


def _predictable(claim: Mapping[str, Any]) -> bool:
    return (claim.get("tier") == "gpu" and claim["quantity"] in PREDICTED_QUANTITIES
            and claim.get("evaluator") != "gpu_training_speedup"
            and claim["setting"].get("baseline", "vanilla") == "vanilla")


def predict_claim(claim: Mapping[str, Any], target: Mapping[str, Any], rounding: str = "per_frame_ceil") -> dict:
    """The roofline prediction (costmodel.latency) of one gpu-tier claim on ``target`` hardware."""
    from costmodel.latency import predict_latency

    s = setting_from_claim(claim["setting"])
    arch = arch_of(s.model)
    kw = dict(frames=s.frames, text_tokens=PREDICTION_TEXT_TOKENS, decode_steps=PREDICTION_DECODE_STEPS)
    hw, dtype = target["hardware"], target["dtype"]
    method = predict_latency(arch, _nominal(arch, s, rounding, kw), hw, dtype)
    base = predict_latency(arch, _nominal(arch, setting_from_claim({"model": s.model, "frames": s.frames}),
                                          rounding, kw), hw, dtype)
    row = {
        "id": claim["id"], "model": s.model, "method": s.method, "baseline": "vanilla", "frames": s.frames,
        "retention": s.retention, "hardware": hw, "dtype": dtype, "attention": target["attention"],
        "hardware_basis": target["basis"], "text_tokens": PREDICTION_TEXT_TOKENS, "decode_steps": PREDICTION_DECODE_STEPS,
        "baseline_ttft_ms": 1e3 * base["ttft_s"], "method_ttft_ms": 1e3 * method["ttft_s"],
        "ttft_speedup": base["ttft_s"] / method["ttft_s"], "vision_ms": 1e3 * method["vision_s"],
        "other_ms": 1e3 * method["other_s"], "llm_ms": 1e3 * method["prefill_s"],
        "baseline_decode_tok_s": base["decode_tokens_per_s"], "method_decode_tok_s": method["decode_tokens_per_s"],
        "decode_speedup": method["decode_tokens_per_s"] / base["decode_tokens_per_s"],
        # Amdahl: the TTFT speedup if the LLM prefill cost nothing (vision + other stay)
        "llm_only_ttft_bound": base["ttft_s"] / (base["vision_s"] + base["other_s"]),
        "reported": claim["reported"]["value"], "quantity": claim["quantity"],
    }
    row["predicted"], row["predicted_unit"] = _predicted_value(claim, row)
    return row


def _nominal(arch, s: Setting, rounding: str, kw: dict):
    frames = kw.get("frames", s.frames)
    m = method_of(s)
    label = f"{arch.name}/{s.method}/F={frames}" + (f"/r={s.retention:g}" if s.retention is not None else "")
    return m.nominal_schedule(arch, frames, kw.get("text_tokens", 0), kw.get("decode_steps", 0),
                              label=label, **budget_options(s, rounding))


def predict_claims(claims: Iterable[Mapping[str, Any]], targets: Mapping[str, Mapping[str, Any]],
                   rounding: str = "per_frame_ceil") -> list[dict]:
    """Roofline predictions for every gpu-tier claim the cost model can predict, each on its paper's
    hardware (``targets[paper]``: claims.yaml `predictions`). A prediction is shown beside a claim,
    never as its measured value. Claims whose method has no nominal schedule are skipped."""
    from methods.registry import nominal_names

    rows = []
    for claim in claims:
        if not _predictable(claim) or claim["setting"].get("method", "vanilla") not in nominal_names():
            continue
        target = targets.get(claim["paper"], DEFAULT_TARGET)
        try:
            rows.append(predict_claim(claim, target, rounding))
        except ValueError:  # e.g. a setting the nominal schedule cannot express: no prediction
            continue
    return rows


def predict_speedups(claims: Iterable[Mapping[str, Any]], hardware: str, dtype: str = "bf16",
                     rounding: str = "per_frame_ceil") -> list[dict]:
    """predict_claims with one hardware for every paper (kept for callers that pass one device)."""
    target = {"hardware": hardware, "dtype": dtype, "attention": "sdpa", "basis": f"one device for all: {hardware}"}
    return predict_claims(claims, {p: target for p in ("tango", "stts", "holitom", "project")}, rounding)
