"""GPU-hours of the full paper tier, estimated by the cost model (not measured).

    python -m replicate.paper.cost [--hardware h100-sxm] [--decode-tokens 16]

Per cell: questions of the benchmark x (predicted TTFT + decode tokens x predicted seconds per
decode token) of the method's nominal schedule on the paper architecture (costmodel.latency's
roofline with the hardware table's efficiencies). Not included: video decoding on the CPU, model
loading, and anything the roofline misses; so read it as a lower bound of the device time.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from . import cells as C

#: questions per benchmark as lmms-eval scores them (dataset cards: Video-MME 2,700; MVBench
#: 20 tasks x 200; EgoSchema's public subset 500; LongVideoBench val 1,337; MLVU dev's 7
#: multiple-choice tasks 2,174; LVBench 1,549 on 103 videos, arXiv 2406.08035 Table 1)
QUESTIONS = {"videomme": 2700, "mvbench": 4000, "egoschema": 500, "longvideobench": 1337, "mlvu": 2174,
             "lvbench": 1549}
TEXT_TOKENS = 100  # prompt text around the video (question + options + chat template), order of magnitude


def cell_method(cell: C.Cell):
    """The Method the shard runs for ``cell``, at the paper model's depth (``Method.from_setting`` on
    the architecture, its newline layout included: Tango's intra-LLM stage on LLaVA-Video, as the
    shard adds it)."""
    from costmodel.arch import load_arch
    from methods.registry import method_class
    from methods.setting import PaperSetting

    arch = load_arch(cell.model)
    setting = PaperSetting.for_arch(arch, cell.retention, cell.method_options, newline=arch.newline)
    return method_class(cell.method).from_setting(setting).build()


def cell_schedule(cell: C.Cell, decode_tokens: int):
    """The nominal TokenSchedule of the cell's method with the options the shard applies (``cell_method``)."""
    from costmodel.arch import load_arch

    arch = load_arch(cell.model)
    return arch, cell_method(cell).nominal_schedule(arch, cell.frames, TEXT_TOKENS, max(decode_tokens - 1, 1))


def cell_seconds(cell: C.Cell, hardware: str, dtype: str, decode_tokens: int) -> float:
    """Predicted device seconds of one question of the cell."""
    from costmodel.latency import predict_latency

    arch, sched = cell_schedule(cell, decode_tokens)
    pred = predict_latency(arch, sched, hardware, dtype)
    return pred["ttft_s"] + (decode_tokens - 1) * pred["decode_s_per_token"]


def all_cells(claims: Iterable[Mapping[str, Any]], config: Mapping[str, Any]) -> list[C.Cell]:
    """Every cell of the selected paper claims, whether or not its paths are set here."""
    found = {c for claim in C.selected_claims(claims, config) for c in C.claim_cells(claim, config)}
    return sorted(found, key=lambda c: c.dir)


def estimate(claims, config, hardware: str = "h100-sxm", dtype: str = "bf16", decode_tokens: int = 16) -> dict:
    by_group: dict[tuple[str, int], float] = defaultdict(float)
    count: dict[tuple[str, int], int] = defaultdict(int)
    skipped = []
    for cell in all_cells(claims, config):
        try:
            seconds = cell_seconds(cell, hardware, dtype, decode_tokens) * QUESTIONS[cell.benchmark]
        except ValueError as exc:
            skipped.append(f"{cell.dir}: {exc}")
            continue
        by_group[(cell.checkpoint, cell.frames)] += seconds
        count[(cell.checkpoint, cell.frames)] += 1
    rows = [{"checkpoint": k[0], "frames": k[1], "cells": count[k], "gpu_hours": s / 3600}
            for k, s in sorted(by_group.items())]
    return {"hardware": hardware, "dtype": dtype, "decode_tokens": decode_tokens, "rows": rows,
            "total_gpu_hours": sum(r["gpu_hours"] for r in rows), "skipped": skipped}


def markdown(est: dict) -> str:
    lines = ["| checkpoint | frames | cells | GPU-hours |", "|---|---|---|---|"]
    lines += [f"| {r['checkpoint']} | {r['frames']} | {r['cells']} | {r['gpu_hours']:.1f} |" for r in est["rows"]]
    lines.append(f"| **total** | | {sum(r['cells'] for r in est['rows'])} | **{est['total_gpu_hours']:.1f}** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    from replicate.claims import load_claims
    from replicate.configuration import load_config

    ap = argparse.ArgumentParser(prog="python -m replicate.paper.cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hardware", default="h100-sxm")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--config", default=str(C.__file__).replace("paper/cells.py", "config.yaml"))
    args = ap.parse_args(argv)
    config = load_config(args.config)
    est = estimate(load_claims(), config, args.hardware, args.dtype, args.decode_tokens)
    print(f"{args.hardware}, {args.dtype}, {args.decode_tokens} decode tokens, {TEXT_TOKENS} text tokens:\n")
    print(markdown(est))
    for s in est["skipped"]:
        print(f"skipped {s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
