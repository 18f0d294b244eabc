"""Turn one claim into a verdict: confirmed, refuted or not-run (with the exact reason).

Two more outcomes keep verdicts honest:

- ``config-unpublished``: a cell depends on a configuration the paper does not publish (claim field
  ``config_unpublished``); a value outside the band refutes our assumed default, not the paper, so
  the verdict says so and the evidence holds the candidate configurations' values.
- ``analogue``: a claim of ``kind: analogue`` (SynthVideoQA / CPU, a tiny model) is measured and
  recorded, never judged against the paper's number.

Every claim JSON also carries ``predicted``: the cost model's number for the paper's setting and
hardware (rule analytic_predictions) where it can predict one, ``None`` otherwise.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

from . import evaluators as ev
from .analytic_evaluators import ANALYTIC_FLOPS
from .evaluator_base import Context, Measurement
from .provenance import provenance
from .scale import run_scale
from .tiers import tier_status

VERDICTS = ("confirmed", "refuted", "not-run", "config-unpublished", "analogue")
_EPS = 1e-9


def bound(reported: float, tolerance: Mapping[str, Any]) -> float:
    """Half-width of the tolerance band around the reported value."""
    if "abs" in tolerance:
        return float(tolerance["abs"])
    if "rel" in tolerance:
        return float(tolerance["rel"]) * abs(reported)
    raise ValueError(f"tolerance needs 'abs' or 'rel', got keys {sorted(tolerance)}")


def judge(measured: float, reported: float, tolerance: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, reason) for a measured number against the reported one."""
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        raise ValueError("judge() needs a measured number")
    half = bound(reported, tolerance)
    comparator = tolerance.get("comparator", "within")
    diff = measured - reported
    if comparator == "within":
        ok = abs(diff) <= half + _EPS
        rule = f"|measured - reported| = {abs(diff):.4g} {'<=' if ok else '>'} {half:.4g}"
    elif comparator == "at_least":
        ok = measured >= reported - half - _EPS
        rule = f"measured {measured:.4g} {'>=' if ok else '<'} reported - tol = {reported - half:.4g}"
    elif comparator == "argmax_within":
        raise ValueError("comparator argmax_within needs the candidates' scores: use judge_argmax()")
    elif comparator == "at_most":
        ok = measured <= reported + half + _EPS
        rule = f"measured {measured:.4g} {'<=' if ok else '>'} reported + tol = {reported + half:.4g}"
    else:
        raise ValueError(f"unknown comparator {comparator!r}; allowed: within, at_least, at_most, argmax_within")
    return ("confirmed" if ok else "refuted"), rule


def judge_argmax(reported: Any, scores: Mapping[Any, float], tolerance: Mapping[str, Any]) -> tuple[str, str]:
    """An argmax claim ("K = 18 is best"): confirmed when the reported candidate's score is within
    ``tolerance.abs`` of the best score, i.e. tied for best inside the noise band."""
    by_key = {float(k): float(v) for k, v in scores.items()}
    if float(reported) not in by_key:
        raise ValueError(f"no score for the reported candidate {reported!r}; have {sorted(by_key)}")
    best_key = max(by_key, key=by_key.get)
    gap = by_key[best_key] - by_key[float(reported)]
    half = bound(reported, tolerance)
    ok = gap <= half + _EPS
    rule = (f"best {best_key:g} scores {by_key[best_key]:.4g}; {float(reported):g} scores "
            f"{by_key[float(reported)]:.4g}: gap {gap:.4g} {'<=' if ok else '>'} {half:.4g}")
    return ("confirmed" if ok else "refuted"), rule


def _base(claim: Mapping[str, Any]) -> dict[str, Any]:
    kind = claim.get("kind", "paper")
    out = {
        "id": claim["id"], "paper": claim["paper"], "kind": kind, "quantity": claim["quantity"],
        "claim": claim.get("claim"), "source": claim.get("source"), "tier": claim["tier"],
        "setting": claim.get("setting"), "reported": claim["reported"]["value"],
        "unit": claim["reported"]["unit"], "tolerance": claim.get("tolerance"),
        "evaluator": claim.get("evaluator"), "measured": None, "predicted": None, "evidence": {},
    }
    if kind == "analogue":  # the paper's number is context, never a value to compare with
        out.update(reported=None, analogue_of=claim.get("analogue_of"),
                   paper_value_context=claim["reported"]["value"])
    return out


def _outcome(claim: Mapping[str, Any], measured: float, evidence: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, reason) of a measured claim, by its kind and comparator."""
    if claim.get("kind") == "analogue":
        return "analogue", (f"{claim.get('analogue_of', 'analogue')} analogue measured on {claim['setting']['model']}: "
                            "recorded, not compared with the paper's number")
    tol = claim["tolerance"]
    if tol.get("comparator") == "argmax_within":
        if "scores" not in evidence:
            raise ValueError("argmax_within needs the evaluator's evidence 'scores' {candidate: score}")
        verdict, rule = judge_argmax(claim["reported"]["value"], evidence["scores"], tol)
    else:
        verdict, rule = judge(measured, claim["reported"]["value"], tol)
    if verdict == "refuted" and claim.get("config_unpublished"):
        cands = evidence.get("config_unpublished", {}).get("candidates", [])
        fits = [c for c in cands if judge(c["value"], claim["reported"]["value"], tol)[0] == "confirmed"]
        return "config-unpublished", (f"configuration unpublished: the assumed default is outside the band ({rule}); "
                                      f"{len(fits)} of {len(cands)} undocumented candidate configurations fit "
                                      f"({'; '.join(str(c['options']) for c in fits) or 'none'})")
    return verdict, (rule if verdict == "confirmed" else f"outside tolerance: {rule}")


def verify_claim(claim: Mapping[str, Any], *, results_dir: str | Path = ".", config: Mapping[str, Any],
                 cuda: bool | None = None, cache: dict[str, Any] | None = None,
                 run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The claim JSON: reported vs measured, verdict, reason, evidence, provenance, and the run's
    scale (``run``: replicate.scale.run_scale of ``config`` unless given).

    `results_dir` is the directory relative to which evaluator inputs (results/...) are read.
    """
    out = _base(claim)
    out["run"] = dict(run) if run is not None else run_scale(config)
    seeds = config.get("seeds") or [None]
    device = "cuda" if claim["tier"] == "gpu" else "cpu"
    out["provenance"] = provenance(config, device=device if claim["tier"] == "gpu" and cuda else "cpu",
                                   dtype=config.get("dtype") if claim["tier"] in ("gpu", "paper") else None,
                                   seed=seeds[0])
    out["predicted"], prediction_evidence = _prediction(claim, Path(results_dir), cache)
    out["evidence"] = dict(prediction_evidence)
    status = tier_status(claim["tier"], config, claim, cuda=cuda)
    if not status.runnable:
        out["evidence"] = prediction_evidence
        return {**out, "verdict": "not-run", "reason": f"{claim['tier']} tier cannot run: {status.reason}. "
                                                       f"{to_run(claim['tier'], status.reason)}"}
    evaluator = ev.get(claim.get("evaluator"))
    if evaluator is None:
        name = claim.get("evaluator")
        reason = (f"evaluator {name!r} for {claim['tier']}-tier claims is not implemented in this workflow yet"
                  if name else "claim names no evaluator")
        return {**out, "verdict": "not-run", "reason": reason}
    root = Path(results_dir)
    missing = [p for p in evaluator.inputs if not (root / p).exists()]
    if missing:
        return {**out, "verdict": "not-run", "reason": f"result file(s) missing: {', '.join(missing)}. "
                                                       f"{TO_RUN}snakemake --cores all {' '.join(missing)}"}
    ctx = Context(root, config, cache if cache is not None else {})
    try:
        m = evaluator.fn(claim, ctx)
    except (KeyError, ValueError) as exc:
        if out["run"]["scale"] != "full":  # a reduced run measures a smaller setting than the claim's
            return {**out, "verdict": "not-run", "reason": _scale_reason(out["run"], exc)}
        return {**out, "verdict": "not-run", "reason": f"evaluator {evaluator.name!r} failed: {exc}"}
    try:
        verdict, reason = _outcome(claim, m.measured, m.evidence)
    except ValueError as exc:
        return {**out, "verdict": "not-run", "reason": f"evaluator {evaluator.name!r}: {exc}"}
    out["predicted"] = out["predicted"] or _cost_model_value(claim, m)
    return {**out, "measured": m.measured, "verdict": verdict, "reason": reason,
            "evidence": {**prediction_evidence, **m.evidence}}


#: how every not-run reason says what would make the claim run
TO_RUN = "To run it: "
_PROFILE_FILES = {"smoke": "profiles/smoke/smoke.yaml", "rehearsal": "profiles/rehearsal and its --configfile"}


def to_run(tier: str, reason: str | None) -> str:
    """The command, or the config key and file, that would let ``tier`` run (after replicate.tiers' reason)."""
    if reason and "tier disabled in the config" in reason:
        return (f"{TO_RUN}set tiers.{tier}: true in the config file that disabled it (replicate/config.yaml, a "
                f"profile's or a --configfile) or pass --config 'tiers={{\"{tier}\": true}}'")
    if tier == "gpu":
        return f"{TO_RUN}on a machine with a CUDA device, snakemake --cores all --profile profiles/gpu (sets gpu: true)"
    if tier == "paper":
        keys = list(dict.fromkeys(re.findall(r"config key (paths\.[\w.\-]+)", reason or "")))
        return (f"{TO_RUN}set {', '.join(keys) or 'the paths it names'} to local copies in replicate/config.yaml "
                "(paths:; README, 'The paper tier') or a --configfile, then snakemake --cores all --profile profiles/gpu")
    return f"{TO_RUN}snakemake --cores all"


def _scale_reason(run: Mapping[str, Any], exc: Exception) -> str:
    """A claim whose setting a smoke / rehearsal / custom run does not reach: said as a scale statement."""
    where = _PROFILE_FILES.get(run["scale"], "the changed keys " + ", ".join(run.get("differs") or []))
    return (f"not measured at this {run['scale']} run's scale: {exc}. {TO_RUN}the full default run, "
            f"snakemake --cores all (no profile; the smaller sizes come from {where})")


PREDICTIONS = "results/analytic/predictions.csv"


def _cost_model_value(claim: Mapping[str, Any], m: Measurement) -> dict | None:
    """The cost model's number for an analytic claim: the measurement itself when the evaluator read
    the cost model's FLOPs table, or the evaluator's ``cost_model_prediction`` evidence."""
    if claim["tier"] != "analytic":
        return None
    if "cost_model_prediction" in m.evidence:
        return {"value": float(m.evidence["cost_model_prediction"]), "unit": claim["reported"]["unit"],
                "source": m.evidence.get("cost_model_basis", "cost model (nominal schedule)")}
    if m.evidence.get("result_file") == ANALYTIC_FLOPS:
        return {"value": m.measured, "unit": claim["reported"]["unit"], "source": "cost model (analytic tier)",
                "note": "the reproduced value is the cost model's own number"}
    return None


def _prediction(claim: Mapping[str, Any], root: Path, cache: dict[str, Any] | None) -> tuple[dict | None, dict]:
    """(predicted block, evidence) of a claim from rule analytic_predictions' file, if it has a row."""
    if claim["tier"] != "gpu" or not (root / PREDICTIONS).exists():
        return None, {}
    frame = Context(root, {}, cache if cache is not None else {}).csv(PREDICTIONS)
    hit = frame[frame["id"] == claim["id"]]
    if hit.empty:
        return None, {}
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in hit.iloc[0].to_dict().items()}
    if row.get("predicted") is None:  # an older predictions file (speedups only)
        return None, {"analytic_prediction": row, "result_file": PREDICTIONS}
    predicted = {"value": float(row["predicted"]), "unit": row["predicted_unit"], "hardware": row["hardware"],
                 "dtype": row["dtype"], "attention": row.get("attention"), "hardware_basis": row.get("hardware_basis"),
                 "source": "cost model (costmodel.latency roofline)"}
    if claim["quantity"] in ("ttft_speedup", "efficiency_speedup"):
        predicted["amdahl_ttft_bound"] = row.get("llm_only_ttft_bound")
    return predicted, {"analytic_prediction": row, "result_file": PREDICTIONS,
                       "note": "roofline prediction on the paper's (or the named assumed) hardware, not a measurement"}


def verify_many(claims, *, results_dir: str | Path = ".", config: Mapping[str, Any],
                cuda: bool | None = None) -> list[dict[str, Any]]:
    cache: dict[str, Any] = {}  # result files are read once for all claims
    run = run_scale(config)
    return [verify_claim(c, results_dir=results_dir, config=config, cuda=cuda, cache=cache, run=run) for c in claims]
