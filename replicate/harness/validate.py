"""Every efficiency-harness argument checked before a model is built or anything is timed.

A bad ``--out``, ``--hardware``, ``--frames`` or retention used to surface only after the whole
timing run (or never: ``--frames 0`` ran 32 frames, an unknown method or a retention of 0 became a
"not-applicable" cell). ``validate_args`` raises ``HarnessArgumentError`` naming the argument, the
bad value and what is allowed. Light dependencies (stdlib, yaml, costmodel JSON) so it is cheap.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from costmodel.cli import UsageError

#: the text tokens around the video in the harness's prompt, with room to spare (its QUESTION is ~60)
PROMPT_TEXT_TOKENS = 256
DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:[0-9]+)?)$")


class HarnessArgumentError(UsageError):
    """A harness argument that cannot run; the message names it and what is allowed."""


def known_hardware() -> list[str]:
    import yaml

    path = Path(__file__).resolve().parents[2] / "costmodel" / "hardware.yaml"
    return sorted(yaml.safe_load(path.read_text()))


def check_out_dir(out: str) -> Path:
    """``--out`` must be (or be creatable as) a writable directory; nothing is created here."""
    if not str(out).strip():
        raise HarnessArgumentError("--out '' is empty; name the output directory (e.g. --out results/eff)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise HarnessArgumentError(f"--out {out!r} exists and is not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise HarnessArgumentError(f"--out {out!r}: {str(parent)!r} is not a writable directory")
    try:  # os.access says yes to root everywhere; a real (removed at once) file says the truth
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HarnessArgumentError(f"--out {out!r}: cannot write in {str(parent)!r} ({exc.strerror})") from None
    return path


def _dedupe(values: list, flag: str) -> list:
    """``values`` without repeats; a repeat is dropped with a notice (a cell is timed once)."""
    out = list(dict.fromkeys(values))
    if len(out) < len(values):
        import sys

        dupes = sorted({str(v) for v in values if values.count(v) > 1})
        print(f"note: {flag}: duplicate(s) {dupes} dropped; each cell is timed once", file=sys.stderr)
    return out


def check_retentions(text: str | Sequence[float]) -> list[float]:
    try:
        values = [float(x) for x in (str(text).split(",") if isinstance(text, str) else text)
                  if str(x).strip()]
    except ValueError:
        raise HarnessArgumentError(f"--retention must be comma-separated numbers in (0, 1], got {text!r}") from None
    if not values:
        raise HarnessArgumentError("--retention is empty; give numbers in (0, 1], e.g. 0.10,0.25")
    for r in values:
        if not math.isfinite(r) or not 0 < r <= 1:
            raise HarnessArgumentError(f"--retention {r!r} is outside (0, 1] (from {text!r})")
    return _dedupe(values, "--retention")


def check_methods(text: str | Sequence[str]) -> list[str]:
    from methods.registry import list_methods

    methods = [str(m).strip() for m in (str(text).split(",") if isinstance(text, str) else text) if str(m).strip()]
    known = list_methods()
    bad = [m for m in methods if m not in known]
    if not methods or bad:
        raise HarnessArgumentError(f"--methods: unknown {bad or '(empty)'}; registered: {', '.join(known)}")
    return _dedupe(methods, "--methods")


def check_decode_tokens(arch: str, frames: int, decode_tokens: int, *, tokens_per_frame: int,
                        context: Optional[int]) -> None:
    """The prompt (video + text) plus the decoded tokens must fit the LLM's context."""
    if context is None or decode_tokens is None:
        return
    room = context - frames * tokens_per_frame - PROMPT_TEXT_TOKENS
    if decode_tokens > room:
        raise HarnessArgumentError(
            f"--decode-tokens {decode_tokens}: {frames} frames x {tokens_per_frame} visual tokens + "
            f"{PROMPT_TEXT_TOKENS} text tokens leave {max(room, 0)} of {arch}'s context length {context}")


def check_device(device: str) -> None:
    """cpu or cuda[:N]; cuda only where torch sees that device."""
    if not DEVICE_PATTERN.match(str(device)):
        raise HarnessArgumentError(f"--device {device!r} is not a device; allowed: cpu, cuda, cuda:N")
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available():
            raise HarnessArgumentError(f"--device {device}: torch sees no CUDA device here "
                                       f"(torch.cuda.is_available() is False); use --device cpu")
        if index >= torch.cuda.device_count():
            raise HarnessArgumentError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")


def check_frames(arch: str, frames: Optional[int], *, tokens_per_frame: int, context: Optional[int]) -> None:
    if frames is None:
        return
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise HarnessArgumentError(f"--frames must be an int >= 1, got {frames!r}")
    if context is not None and frames * tokens_per_frame > context:
        raise HarnessArgumentError(
            f"--frames {frames}: {frames * tokens_per_frame} visual tokens ({tokens_per_frame} per frame) exceed "
            f"{arch}'s context length {context}; at most {context // tokens_per_frame} frames fit")


def check_counts(args: Any) -> None:
    for name, low in (("repeats", 1), ("warmup", 0), ("decode_tokens", 1), ("threads", 1), ("seed", 0)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise HarnessArgumentError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def arch_limits(arch: str, cpu_bench_config: dict) -> tuple[int, Optional[int]]:
    """(visual tokens per frame, LLM context length) of a harness architecture, without building it."""
    from replicate.limits import context_length

    if arch == "cpu-bench":
        vis = cpu_bench_config["vision_config"]
        side = -(-(vis["image_size"] // vis["patch_size"]) // 2)  # 2x2 bilinear pooling of the patch grid
        return side * side, context_length(cpu_bench_config)
    from costmodel.arch import load_arch

    spec = load_arch(arch)  # Qwen2.5-VL: a token per temporal group of temporal_patch input frames
    return -(-int(spec.tokens_per_frame) // spec.vision.temporal_patch), context_length(arch)


def validate_args(args: Any, *, archs: Sequence[str], cpu_bench_config: dict) -> dict[str, Any]:
    """{"methods", "retentions"} parsed from ``args`` (argparse namespace) or HarnessArgumentError."""
    if args.arch not in archs:
        raise HarnessArgumentError(f"--arch {args.arch!r} is unknown; allowed: {list(archs)}")
    check_out_dir(args.out)
    if args.hardware is not None and args.hardware not in known_hardware():
        raise HarnessArgumentError(f"--hardware {args.hardware!r} is not in costmodel/hardware.yaml; "
                                   f"allowed: {known_hardware()}")
    check_counts(args)
    per_frame, context = arch_limits(args.arch, cpu_bench_config)
    check_frames(args.arch, args.frames, tokens_per_frame=per_frame, context=context)
    if not DEVICE_PATTERN.match(str(args.device)):
        raise HarnessArgumentError(f"--device {args.device!r} is not a device; allowed: cpu, cuda, cuda:N")
    methods, retentions = check_methods(args.methods), check_retentions(args.retention)
    from .bench_models import default_frames

    frames = args.frames if args.frames is not None else default_frames(args.arch)
    check_decode_tokens(args.arch, frames, args.decode_tokens, tokens_per_frame=per_frame, context=context)
    check_device(args.device)
    return {"methods": methods, "retentions": retentions}
