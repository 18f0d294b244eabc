"""GPU-hours to plan a paper-tier run on a cluster, from the cost model's latency predictions.

The plan is the paper tier's own: every (setting, benchmark) cell that a paper's paper-tier claims
evaluate (``replicate/claims.yaml``, tier ``paper``), plus the vanilla cell of claims whose baseline
is vanilla. One question costs the predicted TTFT (vision + pooling/pruning + LLM prefill,
``costmodel.latency.predict_latency``) plus ``answer_tokens`` decode steps (16: lmms-eval's
max_new_tokens for Video-MME, an upper bound for letter answers). Benchmark sizes are an input, not
built in: by default every benchmark counts 1,000 questions, so the result reads "GPU-hours per
1,000 questions per benchmark"; pass the real counts of your copies (``--questions videomme=2700``).
Settings the cost model cannot schedule (a method without a nominal schedule, a baseline such as
"best-prior") are listed as skipped with the reason, never guessed. Training (STTS) is not included:
the cost model predicts inference only. Each setting's options are the Method's own
(``Method.from_setting``), priced as the analytic tier prices the papers' numbers (PruneVid's
pre-LLM stages, no retention mapped onto PDrop's lam) with the model's newline layout (Tango's
intra-LLM stage on LLaVA-Video); ``python -m replicate.paper.cost`` estimates the paper tier's own
cells as the shards run them.

    python -m replicate.planning --hardware h100-sxm [--questions videomme=2700,mvbench=4000] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from replicate.analytic import Setting, arch_of, schedule_for, setting_from_claim

PER_BENCHMARK_DEFAULT = 1000
ANSWER_TOKENS = 16


@dataclass(frozen=True)
class Cell:
    paper: str
    setting: Setting
    benchmark: str


def paper_of(claim_id: str) -> str:
    return claim_id.split("-", 1)[0]


def plan_cells(claims: Iterable[Mapping[str, Any]]) -> tuple[list[Cell], dict[str, str]]:
    """The unique cells of every paper-tier claim (and vanilla baselines); skipped setting -> reason."""
    cells: set[Cell] = set()
    skipped: dict[str, str] = {}
    for claim in claims:
        if claim.get("tier") != "paper":
            continue
        spec = claim["setting"]
        variants = [dict(spec)]
        baseline = spec.get("baseline")
        if baseline == "vanilla":
            variants.append({**spec, "method": "vanilla", "retention": None, "options": {}})
        elif baseline:
            skipped[f"{claim['id']} baseline {baseline}"] = "baseline setting not specified in the claim"
        for variant in variants:
            # the model's newline layout adds the options the method's paper states for it (Tango's
            # intra-LLM stage on LLaVA-Video), as the paper tier's shards do
            setting = replace(setting_from_claim(variant), newline=arch_of(variant["model"]).newline)
            cells |= {Cell(paper_of(claim["id"]), setting, b) for b in spec.get("benchmarks", [])}
    return sorted(cells, key=lambda c: (c.paper, c.setting.key, c.benchmark)), skipped


def seconds_per_question(setting: Setting, hardware: str, answer_tokens: int = ANSWER_TOKENS) -> float:
    from costmodel.latency import predict_latency

    arch, schedule = schedule_for(setting)
    latency = predict_latency(arch, schedule, hardware)
    return latency["ttft_s"] + answer_tokens * latency["decode_s_per_token"]


def gpu_hours(cells: Sequence[Cell], hardware: str, questions: Mapping[str, int] | None = None,
              answer_tokens: int = ANSWER_TOKENS) -> dict[str, Any]:
    """Per paper: GPU-hours, cell count, and the cells the cost model could not schedule."""
    questions = questions or {}
    per_paper: dict[str, dict[str, Any]] = defaultdict(lambda: {"gpu_hours": 0.0, "cells": 0, "skipped": {}})
    cost_cache: dict[Setting, float] = {}
    for cell in cells:
        entry = per_paper[cell.paper]
        try:
            if cell.setting not in cost_cache:
                cost_cache[cell.setting] = seconds_per_question(cell.setting, hardware, answer_tokens)
        except (ValueError, KeyError, TypeError) as err:
            entry["skipped"][cell.setting.key] = str(err)
            continue
        n = questions.get(cell.benchmark, PER_BENCHMARK_DEFAULT)
        entry["gpu_hours"] += cost_cache[cell.setting] * n / 3600
        entry["cells"] += 1
    return {"hardware": hardware, "answer_tokens": answer_tokens,
            "questions": {**{c.benchmark: PER_BENCHMARK_DEFAULT for c in cells}, **questions},
            "papers": dict(sorted(per_paper.items()))}


def parse_questions(text: str) -> dict[str, int]:
    """``videomme=2700,mvbench=4000`` -> {"videomme": 2700, "mvbench": 4000}."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) <= 0:
            raise ValueError(f"--questions entry {item!r} must look like benchmark=<positive integer>")
        out[name] = int(count)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from costmodel.latency import HARDWARE_NAMES
    from replicate.claims import load_claims

    parser = argparse.ArgumentParser(prog="python -m replicate.planning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hardware", default="h100-sxm", choices=HARDWARE_NAMES)
    parser.add_argument("--questions", default="", help="benchmark=count,... (default 1000 each)")
    parser.add_argument("--answer-tokens", type=int, default=ANSWER_TOKENS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        questions = parse_questions(args.questions)
    except ValueError as err:
        parser.error(str(err))
    cells, skipped = plan_cells(load_claims())
    result = gpu_hours(cells, args.hardware, questions, args.answer_tokens)
    result["skipped_baselines"] = skipped
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.hardware}, {args.answer_tokens} answer tokens per question; questions per benchmark: "
          + ", ".join(f"{b}={n}" for b, n in sorted(result["questions"].items())))
    for paper, entry in result["papers"].items():
        print(f"{paper}: {entry['gpu_hours']:.1f} GPU-hours over {entry['cells']} (setting, benchmark) cells; "
              f"{len(entry['skipped'])} settings not estimated")
        for key, reason in entry["skipped"].items():
            print(f"    not estimated: {key}: {reason}")
    for what, reason in skipped.items():
        print(f"not estimated: {what}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
