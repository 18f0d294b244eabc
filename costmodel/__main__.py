"""Command line: ``python -m costmodel {archs,flops,memory,latency} ...``.

Examples (``--method``: a method with a nominal schedule, or a variant such as ``tango-intra``, listed
by ``python -m methods``; ``--option``: an option of that method's config, listed there too):
  python -m costmodel archs
  python -m costmodel flops --model llava-onevision-7b --frames 32 --method M --retention 0.10
  python -m costmodel flops --model llava-onevision-7b --method holitom --retention 0.10 --budget global
  python -m costmodel flops --model llava-onevision-7b --method M --retention 0.2 --option NAME=VALUE --json
  python -m costmodel flops --model llava-video-7b --convention exact --text-tokens 100 --per-layer
  python -m costmodel memory --model llava-onevision-7b --decode-steps 100
  python -m costmodel latency --model llava-onevision-7b --hardware h100-sxm --method M --retention 0.1
``--budget`` (per_frame by default, the analytic tier's rule; or global) is the whole-token rounding of
methods that keep a pre-LLM budget from ``--retention``; ``flops`` prints the rule it used and the
percentage of vanilla's FLOPs in the same convention.
Bad arguments exit with code 2 and a message naming the bad value and the allowed ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .arch import ARCH_NAMES, load_arch
from .flops import LM_HEAD_MODES, STAGES, exact_costs, paper_table
from .latency import HARDWARE_NAMES, predict_latency
from .memory import DTYPE_BYTES, memory_report

#: ``--method`` default: the unpruned model (the methods package's ``methods.registry.UNPRUNED``)
UNPRUNED = "vanilla"


#: pre-LLM budget roundings (methods.nominal.nominal_schedule's ``budget``); per_frame is the analytic
#: tier's default (replicate config ``analytic.budget_rounding: per_frame_ceil``)
BUDGETS = ("per_frame", "global")


def parse_option(text: str) -> tuple[str, Any]:
    """``k=18`` -> ("k", 18); ``r=0.5`` -> float; ``layers=7,14,21`` -> tuple of ints."""
    if "=" not in text:
        raise ValueError(f"option {text!r} must look like name=value")
    key, value = text.split("=", 1)
    return key.strip(), _value(value.strip())


def _value(value: str) -> Any:
    if "," in value:
        return tuple(_value(v) for v in value.split(",") if v)
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costmodel", description="Analytic cost model of video LLMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    archs = sub.add_parser("archs", help="list the shipped architectures")
    archs.add_argument("--json", action="store_true")

    def schedule_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, choices=ARCH_NAMES)
        p.add_argument("--method", default=UNPRUNED, help="a method with a nominal schedule (python -m methods)")
        p.add_argument("--frames", type=int, default=None)
        p.add_argument("--retention", type=float, default=None)
        p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                       help="an option of the method's config, e.g. inner_k=18 (repeatable)")
        p.add_argument("--budget", choices=BUDGETS, default="per_frame",
                       help="whole-token budget of methods that keep a pre-LLM budget from --retention: per_frame "
                            "= ceil(r*N) tokens per frame (default; the analytic tier's rule, which reproduces "
                            "HoliTom's FLOPs column: 2.815 T = 6.9 %% of vanilla at r = 0.10), global = "
                            "round(r*F*N) over the video")
        p.add_argument("--text-tokens", type=int, default=0)
        p.add_argument("--decode-steps", type=int, default=0)
        p.add_argument("--json", action="store_true")

    flops = sub.add_parser("flops", help="FLOPs of a method's nominal schedule")
    schedule_args(flops)
    flops.add_argument("--convention", choices=("paper", "exact"), default="paper")
    flops.add_argument("--causal", action="store_true", help="exact: count causal (half) attention")
    flops.add_argument("--lm-head", choices=LM_HEAD_MODES, default="last")
    flops.add_argument("--per-layer", action="store_true")
    memory = sub.add_parser("memory", help="weight and KV-cache bytes")
    schedule_args(memory)
    memory.add_argument("--dtype", choices=tuple(DTYPE_BYTES), default="bf16")
    latency = sub.add_parser("latency", help="roofline latency on a named GPU")
    schedule_args(latency)
    latency.add_argument("--hardware", required=True, choices=HARDWARE_NAMES)
    latency.add_argument("--dtype", choices=tuple(DTYPE_BYTES), default="bf16")
    return parser


def check_context(name: str, arch, frames, text_tokens: int, decode_steps: int) -> None:
    """ValueError when the unpruned prompt (visual + text) plus decode steps exceeds the LLM's
    context length (max_position_embeddings of the shipped config; skipped where none is stated)."""
    from .arch import load_config

    if frames is not None and frames < 1:
        return  # nominal_schedule names the bad --frames
    context = load_config(name).get("text_config", {}).get("max_position_embeddings")
    f = frames if frames is not None else arch.default_frames
    tokens = f * arch.tokens_per_frame + text_tokens + decode_steps
    if context and tokens > context:
        fit = (context - text_tokens - decode_steps) // arch.tokens_per_frame
        raise ValueError(f"--frames {f}: {f * arch.tokens_per_frame} visual tokens + {text_tokens} text + "
                         f"{decode_steps} decode = {tokens} exceed {name}'s context length {context} "
                         f"(max_position_embeddings); at most {fit} frames fit")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "archs":
        return _archs(args.json)
    try:
        options = dict(parse_option(o) for o in args.option)
        if "budget" in options:  # the older spelling --option budget=...
            args.budget = options.pop("budget")
            if args.budget not in BUDGETS:
                raise ValueError(f"budget {args.budget!r}; allowed: {', '.join(BUDGETS)}")
        arch = load_arch(args.model)
        check_context(args.model, arch, args.frames, args.text_tokens, args.decode_steps)
        schedule = method_schedule(arch, args, options)
    except (ValueError, KeyError) as err:
        parser.error(str(err))  # exits with code 2
    if args.command == "flops":
        return _flops(args, arch, schedule, options)
    if args.command == "memory":
        return _emit(args.json, {"schedule": schedule.label, **memory_report(arch, schedule, args.dtype)})
    return _emit(args.json, {"schedule": schedule.label, "hardware": args.hardware,
                             **predict_latency(arch, schedule, args.hardware, args.dtype)})


def method_schedule(arch, args: argparse.Namespace, options: dict[str, Any]):
    """The nominal schedule of ``--method``: the command line is a front end over both packages, and
    the methods package states each method's schedule (the costmodel library itself knows no
    method), imported here only when a schedule is asked for, so ``archs`` stays light."""
    from methods.nominal import nominal_names, nominal_schedule

    if args.method not in nominal_names():
        raise ValueError(f"argument --method: invalid choice: {args.method!r} (choose from "
                         f"{', '.join(nominal_names())})")
    return nominal_schedule(arch, args.method, frames=args.frames, retention=args.retention,
                            text_tokens=args.text_tokens, decode_steps=args.decode_steps,
                            budget=args.budget, **options)


def _archs(as_json: bool) -> int:
    rows = []
    for name in ARCH_NAMES:
        a = load_arch(name)
        rows.append({"name": name, "family": a.family, "llm_layers": a.llm.layers, "hidden": a.llm.hidden,
                     "intermediate": a.llm.intermediate, "heads": a.llm.heads, "kv_heads": a.llm.kv_heads,
                     "vision_layers": a.vision.layers, "tokens_per_frame": a.tokens_per_frame,
                     "newline": a.newline, "default_frames": a.default_frames})
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print("  ".join(f"{k}={v}" for k, v in r.items()))
    return 0


def _flops_total(args: argparse.Namespace, arch, schedule) -> tuple[float, str, dict, dict]:
    """(total, unit, per-stage totals, per-layer values) of ``schedule`` in the chosen convention."""
    if args.convention == "paper":
        table = paper_table(arch, schedule)
        total = table.total(unit="macs")  # the papers' number: one multiply-add counted once
        return (total, "paper-FLOPs (FastV formula, visual tokens, prefill)", {"prefill": total},
                {"prefill": table.per_layer("prefill", unit="macs")})
    table = exact_costs(arch, schedule, causal=args.causal, lm_head=args.lm_head)
    stages = table.by_stage()
    return table.total(), "FLOPs (2 per MAC)", stages, {s: table.per_layer(s) for s in stages}


def _budget_note(args: argparse.Namespace, arch, options: dict[str, Any]) -> str | None:
    """Which budget rule the schedule used, for methods whose retention is a whole-token budget."""
    from methods.nominal import nominal_method

    if args.retention is None or not nominal_method(arch, args.method, args.retention, **options).pre_llm_budget:
        return None
    return ("per_frame: ceil(r*N) whole tokens per frame (the analytic tier's rule; --budget global for "
            "round(r*F*N))" if args.budget == "per_frame" else
            "global: round(r*F*N) tokens over the video (--budget per_frame is the analytic tier's rule)")


def _flops(args: argparse.Namespace, arch, schedule, options: dict[str, Any]) -> int:
    from methods.nominal import nominal_schedule

    total, unit, stage_values, per_layer = _flops_total(args, arch, schedule)
    vanilla = nominal_schedule(arch, UNPRUNED, frames=args.frames, text_tokens=args.text_tokens,
                               decode_steps=args.decode_steps)
    vanilla_total = _flops_total(args, arch, vanilla)[0]
    percent = 100 * total / vanilla_total if vanilla_total else None
    budget = _budget_note(args, arch, options)
    out: dict[str, Any] = {"model": arch.name, "method": args.method, "convention": args.convention,
                           "unit": unit, "budget": args.budget if budget else None, "schedule": schedule.to_dict(),
                           "total": total, "by_stage": stage_values, "vanilla_total": vanilla_total,
                           "percent_of_vanilla": percent}
    if args.per_layer:
        out["per_layer"] = {s: {str(l): v for l, v in sorted(d.items())} for s, d in per_layer.items()}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{schedule.label}  convention={args.convention}  unit={unit}")
    if budget:
        print(f"budget rule: {budget}")
    if args.per_layer:
        stages = [s for s in STAGES if s in per_layer]
        layers = sorted({l for d in per_layer.values() for l in d})
        print("layer " + "".join(f"{s:>12}" for s in stages) + "   (T)")
        for l in layers:
            print(f"{l:>5} " + "".join(f"{per_layer[s].get(l, 0) / 1e12:12.4f}" for s in stages))
    for s, v in stage_values.items():
        print(f"{s:>10}: {v / 1e12:10.4f} T")
    pct = f"  ({percent:.2f} % of vanilla {vanilla_total / 1e12:.4f} T)" if percent is not None else ""
    print(f"{'total':>10}: {total / 1e12:10.4f} T{pct}")
    return 0


def _emit(as_json: bool, payload: dict[str, Any]) -> int:
    if as_json:
        print(json.dumps(payload, indent=2))
    else:
        for k, v in payload.items():
            print(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
