"""``python -m replicate.stts_train --out DIR [options]``: train an STTS scorer (see loop.py).

Examples::

    python -m replicate.stts_train --out results/cpu/stts/train/p50 --topk 0.5        # cpu tier
    python -m replicate.stts_train --backbone molmo2 --model-dir tiny --data synthetic --steps 3 --out /tmp/m
    torchrun --nproc-per-node 8 -m replicate.stts_train --backbone molmo2 --model-dir /ckpt/Molmo2-4B \\
        --data /data/train.jsonl --frames 64 --dtype bf16 --mode end-to-end --out /runs/stts50
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .loop import BACKBONES, MODES, STTSTrainConfig, train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m replicate.stts_train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="run directory (checkpoint.pt, scorer.pt, metrics.json)")
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
        kind = {int: int, float: float, str: str}.get(type(getattr(defaults, f.name)), str)
        ap.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None)
    a = ap.parse_args(argv)
    opts = {f.name: getattr(a, f.name) for f in fields(STTSTrainConfig) if getattr(a, f.name, None) is not None}
    if opts.get("prune_at") is not None:
        opts["prune_at"] = int(opts["prune_at"])
    try:
        cfg = STTSTrainConfig(**opts)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = train(cfg, a.out, resume=not a.no_resume, progress=not a.no_progress,
              on_mismatch="restart" if a.restart_on_mismatch else "error")
    print(json.dumps({k: m[k] for k in ("steps", "train_seconds", "first_steps", "last_steps")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
