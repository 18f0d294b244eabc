"""``python -m methods.predict``: one question about one video, with a method, from a local checkpoint.

    python -m methods.predict --model DIR --video FILE --question "What happens?" \\
        --method holitom --retention 0.1 [--frames 32] [--device cuda] [--option inner_k=18]

Prints the answer, the visual tokens kept at each stage and the seconds of each stage (``--json``:
the same as one JSON object). A bad checkpoint, video, method or option ends with exit status 2 and
one line naming what is wrong and what is allowed.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m methods.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local HF checkpoint directory (LLaVA-OneVision / LLaVA-Video, "
                                                  "Qwen2.5-VL, Molmo2)")
    p.add_argument("--video", required=True, help="video file")
    p.add_argument("--question", required=True)
    p.add_argument("--method", default=None, help="a registered method (python -m methods lists them); default: none")
    p.add_argument("--retention", type=float, default=None, help="kept fraction of the visual tokens")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a method option (repeatable), e.g. --option inner_k=18")
    p.add_argument("--frames", type=int, default=32, help="frames sampled uniformly from the video (default 32)")
    p.add_argument("--setting", choices=["llava-onevision", "llava-video"], default=None,
                   help="LLaVA family: the model's token layout and prompt (default llava-onevision)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--dtype", default=None, help="fp32, bf16 or fp16 (default: fp32 on cpu, bf16 on cuda)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def option_value(text: str):
    """A command-line value as Python: numbers, booleans, None, lists and tuples; else the string."""
    aliases = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in aliases:
        return aliases[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_options(pairs) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--option {pair!r} must be NAME=VALUE, e.g. --option inner_k=18")
        out[name.strip()] = option_value(value.strip())
    return out


def check_args(args) -> None:
    """What can be checked before loading anything."""
    if args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if not Path(args.video).is_file():
        raise ValueError(f"video file {args.video!r} does not exist")
    from methods.video_io import index_frames

    index_frames(args.video)  # demuxes only: an unreadable file fails here, before the model loads
    if not args.question.strip():
        raise ValueError("--question is empty")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: CUDA is not available on this machine (use --device cpu)")
    elif args.device != "cpu":
        raise ValueError(f"--device {args.device!r} is not supported; allowed: cpu, cuda, cuda:N")


def predict(args) -> dict:
    import methods

    options = parse_options(args.option)
    check_args(args)
    t0 = time.perf_counter()
    model = methods.load(args.model, args.method, args.retention, setting=args.setting, frames=args.frames,
                         device=args.device, dtype=args.dtype, **options)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    clip = model.adapter.load_video(args.video, args.frames)
    video_s = time.perf_counter() - t0
    answer = model.generate([clip], [args.question], max_new_tokens=args.max_new_tokens)[0]
    method = model.method
    return {"answer": answer.text, "model": str(args.model), "family": model.family,
            "method": None if method is None else method.name,
            "options": None if method is None else _jsonable(vars(method.config)),
            "frames": args.frames, "tokens_kept": answer.tokens_kept.as_dict(),
            "llm_visual_per_layer": list(answer.schedule.llm_visual),
            "seconds": {"load_model": load_s, "decode_video": video_s, **answer.seconds}}


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if not k.startswith("_")}


def report(result: dict) -> str:
    k = result["tokens_kept"]
    pct = lambda n: f"{100.0 * n / k['unpruned']:.1f} %" if k["unpruned"] else "-"
    method = result["method"] or "none (unpruned)"
    if result["options"]:
        method += " (" + ", ".join(f"{n}={v}" for n, v in result["options"].items()) + ")"
    s = result["seconds"]
    stages = ", ".join(f"{n} {s[n]:.3f}" for n in ("encode", "reduce", "build_inputs", "prefill", "decode") if n in s)
    return "\n".join([
        f"answer: {result['answer']}",
        f"model: {result['model']} ({result['family']}), {result['frames']} frames; method: {method}",
        "visual tokens kept:",
        f"  vision tower       first block {k['vision_first']}, last block {k['vision_last']}",
        f"  entering the LLM   {k['llm_input']} of {k['unpruned']} unpruned ({pct(k['llm_input'])})",
        f"  LLM last layer     {k['llm_output']} ({pct(k['llm_output'])})",
        f"  other tokens       newline {k['newline']}, prompt text {k['text']}, generated {k['generated']}",
        f"seconds: load model {s['load_model']:.2f}, decode video {s['decode_video']:.3f}; {stages}",
    ])


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one result (or one error line) on the terminal, not HF's bars
    try:
        result = predict(args)
    except (ValueError, OSError) as exc:
        msg = " ".join(str(exc).split())
        print(f"python -m methods.predict: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
