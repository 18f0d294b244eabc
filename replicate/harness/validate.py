"""Every efficiency-harness argument checked before a model is built or anything is timed.

A bad ``--out``, ``--hardware``, ``--frames`` or retention used to surface only after the whole
timing run (or never: ``--frames 0`` ran 32 frames, an unknown method or a retention of 0 became a
"not-applicable" cell). ``validate_args`` raises ``HarnessArgumentError`` naming the argument, the
bad value and what is allowed. Light dependencies (stdlib, yaml, costmodel JSON) so it is cheap.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence


class HarnessArgumentError(ValueError):
    """A harness argument that cannot run; the message names it and what is allowed."""


def known_hardware() -> list[str]:
    import yaml

    path = Path(__file__).resolve().parents[2] / "costmodel" / "hardware.yaml"
    return sorted(yaml.safe_load(path.read_text()))


def check_out_dir(out: str) -> Path:
    """``--out`` must be (or be creatable as) a writable directory; nothing is created here."""
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


def check_retentions(text: str) -> list[float]:
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise HarnessArgumentError(f"--retention must be comma-separated numbers in (0, 1], got {text!r}") from None
    if not values:
        raise HarnessArgumentError("--retention is empty; give numbers in (0, 1], e.g. 0.10,0.25")
    for r in values:
        if not math.isfinite(r) or not 0 < r <= 1:
            raise HarnessArgumentError(f"--retention {r!r} is outside (0, 1] (from {text!r})")
    return values


def check_methods(text: str) -> list[str]:
    from methods.registry import list_methods

    methods = [m.strip() for m in str(text).split(",") if m.strip()]
    known = list_methods()
    bad = [m for m in methods if m not in known]
    if not methods or bad:
        raise HarnessArgumentError(f"--methods: unknown {bad or '(empty)'}; registered: {', '.join(known)}")
    return methods


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
    if not (args.device == "cpu" or str(args.device).startswith("cuda")):
        raise HarnessArgumentError(f"--device must be cpu or cuda[:N], got {args.device!r}")
    return {"methods": check_methods(args.methods), "retentions": check_retentions(args.retention)}
