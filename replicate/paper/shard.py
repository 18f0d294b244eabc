"""One shard of one paper-tier cell, the cell summary, and the index the evaluators read.

A shard file is JSON lines: a header (``kind: shard``: status ok / error / not-applicable, the
reason, the cell, what was loaded, provenance, seconds) then one line per sample (``kind:
sample``: sample id, question id, options, prediction, answer, correct, visual tokens kept, timing).
It is written atomically once the shard is done, so an interrupted job leaves nothing a later run
would trust, and a finished shard is never rewritten (Snakemake sees its output; ``run_shard``
also refuses to redo an existing one).

A configured path that is unusable (missing dir, no config.json, no annotation file, a missing or
unreadable video) ends the shard with ``status: error`` and a reason naming the config key and
the file: only that cell stops, and the claims that read it say ``not-run`` with that reason.
``python -m replicate.paper.shard clean-errors`` removes error shards so a rerun retries them.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from replicate.benchmarks.base import LETTERS, MCQSample, MissingVideoError
from replicate.benchmarks.prompts import parse_letter
from replicate.benchmarks.registry import format_prompt, load_benchmark
from replicate.benchmarks.scoring import score
from replicate.io import write_jsonl

from .cells import CELLS_ROOT, Cell
from .checkpoints import PaperInputError, attach_map_head, attach_stts_scorer, load_adapter

ANSWER_MODES = ("generate", "option_logits")


def dataset_key(cell: Cell) -> str:
    return f"paths.datasets.{cell.dataset}"


def dataset_root(cell: Cell, config: Mapping[str, Any]) -> Path:
    value = str(config.get("paths", {}).get("datasets", {}).get(cell.dataset, "") or "").strip()
    if not value:
        raise PaperInputError(f"no dataset for {cell.dataset}: config key {dataset_key(cell)} is empty")
    root = Path(value).expanduser()
    return root if cell.dataset == cell.benchmark else root / cell.benchmark


def load_cell_samples(cell: Cell, config: Mapping[str, Any]):
    """The benchmark's samples (``paper.limit`` first ones); bad layouts raise PaperInputError."""
    root = dataset_root(cell, config)
    try:
        return load_benchmark(cell.benchmark, root, limit=config.get("paper", {}).get("limit"), strict=True)
    except (FileNotFoundError, MissingVideoError, KeyError, ValueError, ImportError) as exc:
        raise PaperInputError(f"{dataset_key(cell)}: {exc}") from exc


def shard_bounds(n_samples: int, shard: int, n_shards: int) -> tuple[int, int]:
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    return shard * n_samples // n_shards, (shard + 1) * n_samples // n_shards


# ----------------------------------------------------------------------------- the request path
def request(adapter, clip, prompt: str, max_new_tokens: int):
    """THE request of one sample in the paper tier: ``methods.pipeline.run`` with the attached method
    (video -> in-ViT / pre-LLM / inner-LLM stages -> greedy tokens), the same for every family."""
    from methods.pipeline import run

    return run(adapter, None, clip.pixel_values, prompt, timestamps=clip.timestamps, duration=clip.duration,
               decode_steps=max_new_tokens - 1, eos_token_id=getattr(adapter.tokenizer, "eos_token_id", None))


def letter_ids(tokenizer, n: int) -> list[int]:
    from methods.adapters.text import encode_text

    ids = []
    for letter in LETTERS[:n]:
        enc = encode_text(tokenizer, letter)
        if len(enc) != 1:
            raise ValueError(f"option letter {letter!r} is {len(enc)} tokens for this tokenizer; "
                             f"answer mode option_logits needs single-token letters")
        ids.append(enc[0])
    return ids


def answer(adapter, sample: MCQSample, clip, mode: str, max_new_tokens: int) -> dict[str, Any]:
    """Prediction of one sample: ``generate`` = lmms-eval's greedy text, letter parsed;
    ``option_logits`` = argmax of the first token's logits over the option letters."""
    t0 = time.perf_counter()
    gen = request(adapter, clip, format_prompt(sample), max_new_tokens if mode == "generate" else 1)
    model_s = time.perf_counter() - t0
    n = len(sample.options)
    if mode == "generate":
        prediction = adapter.tokenizer.decode(gen.tokens)
        idx = parse_letter(prediction, n)
    else:
        logits = gen.logits[letter_ids(adapter.tokenizer, n)]
        idx = int(logits.argmax())
        prediction = LETTERS[idx]
    visual = gen.schedule.llm_visual
    return {"prediction": prediction, "pred_index": idx, "model_s": model_s,
            "visual_tokens_kept": int(visual[0]) if visual else 0,
            "visual_tokens_layer_avg": (sum(visual) / len(visual)) if visual else 0.0}


# ----------------------------------------------------------------------------- method
def build_method(cell: Cell, adapter, model: str):
    """(Method or None, options record) for the cell on this model; ValueError if not applicable.

    Layer options are stated for the paper model (costmodel's architecture ``model``) and scaled
    to the checkpoint's depth when it differs (a tiny rehearsal model); both are recorded. The
    setting names the adapter's pooled grid and newline layout, so the Method adds what its paper
    states for them (Tango: its sink list written out, the intra-LLM stage on LLaVA-Video)."""
    from costmodel.arch import load_arch
    from methods.registry import takes_retention
    from replicate.harness.options import cell_setting

    if not takes_retention(cell.method):
        return None, {"applied": {}, "paper": {}, "label": cell.method}
    opts = cell_setting(adapter, cell.method, cell.retention, cell.method_options,
                        paper_layers=load_arch(model).llm.layers, grid=tuple(adapter.grid))
    return opts.build(), {**opts.record(), "label": opts.label}


# ----------------------------------------------------------------------------- a shard
def _clip(adapter, sample: MCQSample, cell: Cell):
    try:
        return adapter.load_video(sample.video_path, cell.frames)
    except ValueError as exc:
        raise PaperInputError(f"{dataset_key(cell)}: unreadable video {str(sample.video_path)!r} "
                              f"(sample {sample.sample_id}): {exc}") from exc


def run_samples(adapter, samples, cell: Cell, mode: str, max_new_tokens: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    records = []
    for s in tqdm(samples, desc=f"{cell.tag} {cell.bench_tag}", disable=not progress, file=sys.stderr,
                  mininterval=2):
        t0 = time.perf_counter()
        clip = _clip(adapter, s, cell)
        decode_s = time.perf_counter() - t0
        out = answer(adapter, s, clip, mode, max_new_tokens)
        records.append({"kind": "sample", "sample_id": s.sample_id,
                        "question_id": str(s.meta.get("question_id", s.sample_id)), "options": s.options,
                        "prediction": out["prediction"], "pred_index": out["pred_index"],
                        "answer": s.answer_letter, "answer_index": s.answer_index,
                        "correct": out["pred_index"] == s.answer_index,
                        "visual_tokens_kept": out["visual_tokens_kept"],
                        "visual_tokens_layer_avg": out["visual_tokens_layer_avg"],
                        "timing": {"decode_video_s": decode_s, "model_s": out["model_s"],
                                   "total_s": time.perf_counter() - t0},
                        "meta": {k: v for k, v in s.meta.items() if isinstance(v, (str, int, float, bool))}})
    return records


def _device_dtype(config: Mapping[str, Any]):
    import torch

    paper = config.get("paper", {})
    device = paper.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = paper.get("dtype", "bf16") if device != "cpu" else "fp32"
    return device, {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name], name


def compute_shard(cell: Cell, shard: int, n_shards: int, config: Mapping[str, Any], progress: bool = True):
    """(header, records) of one shard; bad inputs give status error, not an exception."""
    paper = config.get("paper", {})
    mode = paper.get("answer", "generate")
    if mode not in ANSWER_MODES:
        raise ValueError(f"config key paper.answer: {mode!r} is not allowed; allowed: {ANSWER_MODES}")
    header: dict[str, Any] = {"kind": "shard", "cell": cell.as_dict(), "shard": shard, "n_shards": n_shards,
                              "answer_mode": mode, "rehearsal": bool(paper.get("rehearsal", False))}
    t0 = time.perf_counter()
    try:
        samples = load_cell_samples(cell, config)
        lo, hi = shard_bounds(len(samples), shard, n_shards)
        header.update(n_benchmark=len(samples), sample_range=[lo, hi], n_skipped=len(samples.skipped))
        device, dtype, dtype_name = _device_dtype(config)
        adapter, info = load_adapter(config, cell.checkpoint, device=device, dtype=dtype)
        header.update(info, device=device, dtype=dtype_name)
        try:
            method, opts = build_method(cell, adapter, cell.model)
        except ValueError as exc:
            return {**header, "status": "not-applicable", "reason": f"options rejected: {exc}"}, []
        scorer = attach_stts_scorer(adapter, method, cell.checkpoint)
        if scorer.get("trained_scorer"):
            opts["label"] = cell.method
        header["options"] = opts
        header.update(scorer, **attach_map_head(adapter, config, cell.method))
        records = _with_method(adapter, method, samples[lo:hi], cell, mode, paper, progress)
    except PaperInputError as exc:
        return {**header, "status": "error", "reason": str(exc), "seconds": time.perf_counter() - t0}, []
    return {**header, "status": "ok", "seconds": time.perf_counter() - t0, "n": len(records)}, records


def _with_method(adapter, method, samples, cell, mode, paper, progress):
    from methods import apply_method

    handle = apply_method(adapter, method) if method is not None else None
    try:
        return run_samples(adapter, samples, cell, mode, int(paper.get("max_new_tokens", 16)), progress)
    finally:
        if handle is not None:
            handle.remove()


def read_shard(path: str | Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
    if not lines or lines[0].get("kind") != "shard":
        raise ValueError(f"{path}: not a paper-tier shard file (no header line)")
    return lines[0], lines[1:]


def run_shard(cell: Cell, shard: int, n_shards: int, config: Mapping[str, Any], out: str | Path,
              progress: bool = True) -> dict:
    """Compute and write one shard; an existing finished shard is returned untouched."""
    from replicate.provenance import provenance

    if Path(out).is_file():
        header, _ = read_shard(out)
        if header.get("status") != "error":
            return header
    header, records = compute_shard(cell, shard, n_shards, config, progress)
    header["provenance"] = provenance(config, device=header.get("device", "cpu"), dtype=header.get("dtype"),
                                      seed=(config.get("seeds") or [0])[0])
    write_jsonl(out, [header, *records])
    return header


# ----------------------------------------------------------------------------- cell summary
def _score(cell: Cell, records: list[dict]) -> dict[str, Any]:
    samples = [MCQSample(benchmark=cell.benchmark, sample_id=r["sample_id"], video_path=Path(""), question="",
                         options=list(r["options"]), answer_index=int(r["answer_index"]), meta=r.get("meta", {}))
               for r in records]
    return score(samples, [r["pred_index"] for r in records])


def summarise_cell(cell: Cell, shard_paths: list[str | Path]) -> dict[str, Any]:
    """Merge a cell's shards: accuracy as lmms-eval reports it (``headline_accuracy``: the task mean
    for MVBench and MLVU), visual tokens kept, runtimes; a failed shard makes the cell fail."""
    headers, records = [], []
    for p in sorted(shard_paths):
        h, r = read_shard(p)
        headers.append(h)
        records.extend(r)
    base = {"cell": cell.as_dict(), "n_shards": len(headers), "shards": [str(p) for p in sorted(shard_paths)],
            "rehearsal": any(h.get("rehearsal") for h in headers)}
    bad = [h for h in headers if h.get("status") != "ok"]
    if bad:
        return {**base, "status": bad[0]["status"], "reason": bad[0].get("reason")}
    ids = [r["sample_id"] for r in records]
    if len(set(ids)) != len(ids) or len(ids) != headers[0].get("n_benchmark"):
        return {**base, "status": "error", "reason": f"shards hold {len(ids)} samples ({len(set(ids))} distinct), "
                                                     f"the benchmark {headers[0].get('n_benchmark')}"}
    metrics = _score(cell, records) if records else {"headline_accuracy": None, "accuracy": None, "n": 0}
    first = headers[0]
    return {**base, "status": "ok", "benchmark": cell.benchmark, "metrics": metrics,
            "headline_accuracy": metrics["headline_accuracy"], "accuracy": metrics["accuracy"], "n": len(records),
            "mean_visual_tokens_kept": _mean([r["visual_tokens_kept"] for r in records]),
            "mean_visual_tokens_layer_avg": _mean([r["visual_tokens_layer_avg"] for r in records]),
            "model_seconds": sum(r["timing"]["model_s"] for r in records),
            "shard_seconds": sum(h.get("seconds", 0.0) for h in headers),
            "wall_seconds_max_shard": max(h.get("seconds", 0.0) for h in headers),
            "answer_mode": first.get("answer_mode"), "device": first.get("device"), "dtype": first.get("dtype"),
            "map_head": first.get("map_head"), "options": first.get("options"),
            "checkpoint_dir": first.get("checkpoint_dir"), "provenance": first.get("provenance")}


def _mean(xs) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def write_index(summaries: list[str | Path], out: str | Path, config: Mapping[str, Any]) -> dict:
    """``results/paper/cells.json``: every cell summary this run built, with its status."""
    from replicate.io import write_json

    cells = []
    for p in sorted(map(str, summaries)):
        s = json.loads(Path(p).read_text())
        cells.append({"summary": p, "status": s["status"], "reason": s.get("reason"),
                      "headline_accuracy": s.get("headline_accuracy"), **s["cell"]})
    index = {"cells": cells, "rehearsal": bool(config.get("paper", {}).get("rehearsal", False))}
    write_json(out, index)
    return index


def summary_job(cell: Mapping[str, Any], shards: list[str], out: str, log: str) -> None:
    """Rule paper_cell_summary."""
    from replicate.io import write_json, write_text

    summary = summarise_cell(Cell.from_dict(cell), shards)
    write_json(out, summary)
    write_text(log, f"{summary['status']}: {summary.get('headline_accuracy')} {summary.get('reason') or ''}\n")


def index_job(summaries: list[str], out: str, log: str, rehearsal: bool) -> None:
    """Rule paper_index."""
    from replicate.io import write_text

    index = write_index(summaries, out, {"paper": {"rehearsal": rehearsal}})
    write_text(log, f"{len(index['cells'])} cells\n")


def clean_errors(root: str | Path = CELLS_ROOT) -> list[Path]:
    """Delete shards whose header says error (and their cell summaries) so a rerun retries them."""
    removed = []
    for p in sorted(Path(root).rglob("shard-*.jsonl")):
        if read_shard(p)[0].get("status") == "error":
            p.unlink()
            (p.parent / "summary.json").unlink(missing_ok=True)
            removed.append(p)
    return removed


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m replicate.paper.shard")
    ap.add_argument("command", choices=["clean-errors"])
    ap.add_argument("--root", default=CELLS_ROOT)
    args = ap.parse_args(argv)
    for p in clean_errors(args.root):
        print(f"removed {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
