"""``python -m replicate.stts_train --out DIR [options]``: train an STTS scorer (see loop.py).

Examples::

    python -m replicate.stts_train --out results/cpu/stts/train/p50 --topk 0.5        # cpu tier
    python -m replicate.stts_train --backbone molmo2 --model-dir tiny --data synthetic --steps 3 --out /tmp/m
    torchrun --nproc-per-node 8 -m replicate.stts_train --backbone molmo2 --model-dir /ckpt/Molmo2-4B \\
        --data /data/train.jsonl --frames 64 --dtype bf16 --mode end-to-end --out /runs/stts50

Every number is checked while the arguments are parsed (finite, in range, whole where a count is
meant); a bad one, a damaged model directory or a step that turns the weights non-finite ends the
run with exit code 2 and one line naming it.
"""
from __future__ import annotations

import json
from dataclasses import fields

from costmodel.cli import Parser, entry_point, finite_float, integer, out_dir

from methods.stts import STTS_FIDELITIES

from .loop import BACKBONES, FLOAT_RANGES, INT_RANGES, MODES, NonFiniteTraining, STTSTrainConfig, train

PROG = "python -m replicate.stts_train"


def _arg_type(name: str, default):
    if name in INT_RANGES:
        return integer(*INT_RANGES[name])
    if name in FLOAT_RANGES:
        lo, hi, lo_open, hi_open = FLOAT_RANGES[name]
        return finite_float(lo, hi, lo_open=lo_open, hi_open=hi_open)
    return str


def build_parser() -> Parser:
    ap = Parser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=out_dir, help="run directory (checkpoint.pt, scorer.pt, metrics.json)")
    ap.add_argument("--backbone", choices=BACKBONES, default="llava-ov")
    ap.add_argument("--mode", choices=MODES, default="scorer")
    ap.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint.pt")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--restart-on-mismatch", action="store_true",
                    help="a checkpoint.pt of another configuration is set aside instead of an error")
    defaults = STTSTrainConfig()
    for f in fields(STTSTrainConfig):
        if f.name in ("backbone", "mode"):
            continue
        kw = {"dtype": {"choices": ("fp32", "bf16")}, "fidelity": {"choices": STTS_FIDELITIES}}.get(f.name, {})
        ap.add_argument("--" + f.name.replace("_", "-"), type=_arg_type(f.name, getattr(defaults, f.name)),
                        default=None, help=f"default: {getattr(defaults, f.name)!r}", **kw)
    return ap


@entry_point(PROG, NonFiniteTraining)
def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    opts = {f.name: getattr(a, f.name) for f in fields(STTSTrainConfig) if getattr(a, f.name, None) is not None}
    cfg = STTSTrainConfig(**opts)
    m = train(cfg, a.out, resume=not a.no_resume, progress=not a.no_progress,
              on_mismatch="restart" if a.restart_on_mismatch else "error")
    print(json.dumps({k: m[k] for k in ("steps", "train_seconds", "first_steps", "last_steps")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
