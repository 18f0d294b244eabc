"""Turn one claim into a verdict: confirmed, refuted or not-run (with the exact reason)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from . import evaluators as ev
from .provenance import provenance
from .tiers import tier_status

VERDICTS = ("confirmed", "refuted", "not-run")
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
    elif comparator == "at_most":
        ok = measured <= reported + half + _EPS
        rule = f"measured {measured:.4g} {'<=' if ok else '>'} reported + tol = {reported + half:.4g}"
    else:
        raise ValueError(f"unknown comparator {comparator!r}; allowed: within, at_least, at_most")
    return ("confirmed" if ok else "refuted"), rule


def _base(claim: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": claim["id"], "paper": claim["paper"], "quantity": claim["quantity"],
        "claim": claim.get("claim"), "source": claim.get("source"), "tier": claim["tier"],
        "setting": claim.get("setting"), "reported": claim["reported"]["value"],
        "unit": claim["reported"]["unit"], "tolerance": claim["tolerance"],
        "evaluator": claim.get("evaluator"), "measured": None, "evidence": {},
    }


def verify_claim(claim: Mapping[str, Any], *, results_dir: str | Path = ".", config: Mapping[str, Any],
                 cuda: bool | None = None, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """The claim JSON: reported vs measured, verdict, reason, evidence, provenance.

    `results_dir` is the directory relative to which evaluator inputs (results/...) are read.
    """
    out = _base(claim)
    seeds = config.get("seeds") or [None]
    device = "cuda" if claim["tier"] == "gpu" else "cpu"
    out["provenance"] = provenance(config, device=device if claim["tier"] == "gpu" and cuda else "cpu",
                                   dtype=config.get("dtype") if claim["tier"] in ("gpu", "paper") else None,
                                   seed=seeds[0])
    status = tier_status(claim["tier"], config, claim, cuda=cuda)
    if not status.runnable:
        out["evidence"] = _prediction(claim, Path(results_dir), cache)
        return {**out, "verdict": "not-run", "reason": f"{claim['tier']} tier cannot run: {status.reason}"}
    evaluator = ev.get(claim.get("evaluator"))
    if evaluator is None:
        name = claim.get("evaluator")
        reason = (f"evaluator {name!r} for {claim['tier']}-tier claims is not implemented in this workflow yet"
                  if name else "claim names no evaluator")
        return {**out, "verdict": "not-run", "reason": reason}
    root = Path(results_dir)
    missing = [p for p in evaluator.inputs if not (root / p).exists()]
    if missing:
        return {**out, "verdict": "not-run", "reason": f"result file(s) missing: {', '.join(missing)}"}
    ctx = ev.Context(root, config, cache if cache is not None else {})
    try:
        m = evaluator.fn(claim, ctx)
    except (KeyError, ValueError) as exc:
        return {**out, "verdict": "not-run", "reason": f"evaluator {evaluator.name!r} failed: {exc}"}
    verdict, rule = judge(m.measured, claim["reported"]["value"], claim["tolerance"])
    reason = rule if verdict == "confirmed" else f"outside tolerance: {rule}"
    return {**out, "measured": m.measured, "verdict": verdict, "reason": reason, "evidence": m.evidence}


PREDICTIONS = "results/analytic/predictions.csv"


def _prediction(claim: Mapping[str, Any], root: Path, cache: dict[str, Any] | None) -> dict[str, Any]:
    """The analytic roofline prediction of a gpu speedup claim, if rule analytic_predictions wrote one."""
    if claim["tier"] != "gpu" or not (root / PREDICTIONS).exists():
        return {}
    frame = ev.Context(root, {}, cache if cache is not None else {}).csv(PREDICTIONS)
    hit = frame[frame["id"] == claim["id"]]
    if hit.empty:
        return {}
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in hit.iloc[0].to_dict().items()}
    return {"analytic_prediction": row, "result_file": PREDICTIONS,
            "note": "roofline prediction on the config hardware, not a measurement; the verdict needs the gpu tier"}


def verify_many(claims, *, results_dir: str | Path = ".", config: Mapping[str, Any],
                cuda: bool | None = None) -> list[dict[str, Any]]:
    cache: dict[str, Any] = {}  # result files are read once for all claims
    return [verify_claim(c, results_dir=results_dir, config=config, cuda=cuda, cache=cache) for c in claims]
