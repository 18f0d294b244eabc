"""Efficiency harness: TTFT split, decode throughput and peak memory per (method, retention).

Every request goes through ``methods.pipeline.run`` with a ``StageTimer`` observing it.
TTFT = vision + other + LLM prefill, timed per request (batch 1):

- ``vision``: the ``encode`` stage (SigLIP tower, projector, pooling and the saliency signals the
  methods read -- computed for every method, vanilla included, so this part is identical across
  methods as in HoliTom's figure, where the ViT bar is 500 ms for all);
- ``other``: the method's pre-LLM reduction plus splicing the prompt (``reduce`` + ``build_inputs``);
- ``llm``: the ``prefill`` stage with the method's inner plan, KV cache on (what generation needs),
  up to the first token's logits.

Decode: ``--decode-tokens`` greedy steps after a prefill (EOS ignored), tokens/s = steps / time.
Timing: warm-up runs, then the median of ``--repeats``; the same attention implementation (SDPA)
for every method. CPU: ``time.perf_counter`` with ``torch.set_num_threads(threads)``; memory is the
process's peak RSS (VmHWM from /proc/self/status: a high-water mark over the whole process that
cannot be reset per method, labelled as such). CUDA: ``torch.cuda.Event`` pairs with a
synchronize, bf16 by default, ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

Every measurement is written beside the cost model's prediction for the same recorded schedule
(``replicate.harness.predictions``; the hardware entry from ``costmodel.hardware.detect_hardware``).
The models timed are in ``replicate.harness.bench_models``.

Entry point (needs only torch + transformers + this repository; no snakemake, no fvcore)::

    python -m replicate.harness.efficiency --arch llava-onevision-7b --device cuda \\
        --dtype bf16 --frames 32 --methods vanilla,fastv,visionzip,holitom-wo-m,holitom,tango \\
        --retention 0.10 --repeats 5 --out DIR

``--arch qwen2.5-vl-7b`` times a random-weight Qwen2.5-VL-7B built from costmodel's config
(``methods.adapters.qwen2_5_vl``; 64 input frames = 32 temporal groups of 256 tokens by default).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from costmodel.hardware import detect_hardware

from .bench_models import ARCHS, CPU_BENCH_CONFIG, DTYPES, build_adapter, default_frames, make_pixels
from .options import cell_setting, rtag
from .predictions import add_predictions

DEFAULT_METHODS = ("vanilla", "fastv", "visionzip", "holitom-wo-m", "holitom", "tango")
QUESTION = ("Question: What happens in the video?\nOptions:\n(A) a red ball moves left\n"
            "(B) a blue square appears\n(C) nothing changes\n(D) the light flashes twice\n"
            "Answer with the option's letter from the given choices directly.")


def process_peak_rss_mb() -> Optional[float]:
    """Peak resident set size of this process (VmHWM), MB; None where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------------------ one cell
class EfficiencyCell:
    """One (method, retention) being timed: its options, Method and collected measurements."""

    def __init__(self, adapter, method: str, retention: Optional[float], options: Optional[dict] = None):
        self.method, self.retention = method, retention
        setting = cell_setting(adapter, method, retention, options)
        self.opts = setting.record()
        self.label = setting.label
        self.m = setting.build()
        self.split_runs: list[list[float]] = []   # per repeat: [vision, other, llm] seconds
        self.decode_runs: list[float] = []        # per repeat: seconds of the decode stage
        self.last = None                          # RequestResult of the last timed request

    def request(self, adapter, pixels, timestamps, question: str, decode_steps: int, timer=None):
        """One request of this cell through the pipeline (``timer``: a StageTimer or None)."""
        from methods.pipeline import run

        return run(adapter, self.m, pixels, question, timestamps=timestamps, decode_steps=decode_steps,
                   use_cache=True, timer=timer, label=self.method)

    def timed(self, adapter, pixels, timestamps, question: str, decode_steps: int) -> None:
        from methods.pipeline import StageTimer

        timer = StageTimer(str(adapter.device))
        self.last = self.request(adapter, pixels, timestamps, question, decode_steps, timer)
        s = self.last.seconds
        self.split_runs.append([s["encode"], s["reduce"] + s["build_inputs"], s["prefill"]])
        self.decode_runs.append(s["decode"])


def peak_memory(adapter, cell: EfficiencyCell, pixels, timestamps, question: str, decode_steps: int) -> dict:
    """Peak memory of one request (CUDA), or the process's peak RSS so far (CPU)."""
    import torch

    if not str(adapter.device).startswith("cuda"):
        return {"process_peak_rss_mb": process_peak_rss_mb(),
                "kind": "process peak RSS (VmHWM): high-water mark of the whole process so far, "
                        "not resettable per method"}
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    cell.request(adapter, pixels, timestamps, question, decode_steps)
    torch.cuda.synchronize()
    return {"peak_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
            "kind": "torch.cuda.max_memory_allocated after reset_peak_memory_stats (one request)"}


def cell_result(c: EfficiencyCell, memory: dict, *, repeats: int, warmup: int, decode_tokens: int) -> dict:
    """The measured fields of one cell: medians of the TTFT split, decode tokens/s, the schedule."""
    med = [statistics.median(r[i] for r in c.split_runs) for i in range(3)]
    measured = {"vision_s": med[0], "other_s": med[1], "llm_s": med[2], "ttft_s": sum(med),
                "ttft_runs_s": [sum(r) for r in c.split_runs], "ttft_min_s": min(sum(r) for r in c.split_runs),
                "split_runs_s": c.split_runs,
                "decode_tokens_per_s": decode_tokens / statistics.median(c.decode_runs),
                "decode_runs_s": c.decode_runs}
    last = c.last
    return {"method": c.method, "label": c.label,
            "retention": c.retention, "rtag": rtag(c.retention), "options": c.opts,
            "measured": measured, "memory": memory, "repeats": repeats, "warmup": warmup,
            "decode_tokens": decode_tokens, "order": "round-robin over methods per repeat",
            "visual_tokens_llm": int(last.prefill.llm_visual[0]), "prompt_tokens": int(last.inputs.length),
            "schedule": asdict(last.schedule)}


def measure_cells(adapter, cells: Sequence[EfficiencyCell], pixels, timestamps, *, repeats: int = 3,
                  warmup: int = 1, decode_tokens: int = 16, question: str = QUESTION) -> list[dict[str, Any]]:
    """Time ``cells`` round-robin (repeat r of every cell before repeat r + 1 of any), so slow drifts
    of a shared machine's load hit every method alike; medians per cell."""
    import torch

    if repeats < 1 or warmup < 0 or decode_tokens < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, decode_tokens >= 1; got {repeats}, {warmup}, {decode_tokens}")
    with torch.inference_mode():
        for c in cells:
            for _ in range(warmup):
                c.request(adapter, pixels, timestamps, question, min(decode_tokens, 2))
        for _ in range(repeats):
            for c in cells:
                c.timed(adapter, pixels, timestamps, question, decode_tokens)
        return [cell_result(c, peak_memory(adapter, c, pixels, timestamps, question, decode_tokens),
                            repeats=repeats, warmup=warmup, decode_tokens=decode_tokens) for c in cells]


def time_cell(adapter, method: str, retention: Optional[float], pixels, timestamps, *, repeats: int = 3,
              warmup: int = 1, decode_tokens: int = 16, options: Optional[dict] = None,
              question: str = QUESTION) -> dict[str, Any]:
    """Measured TTFT split (median of ``repeats``), decode tokens/s, memory and the recorded
    schedule of one (method, retention) on ``adapter``. Raises ValueError for bad options."""
    cell = EfficiencyCell(adapter, method, retention, options)
    return measure_cells(adapter, [cell], pixels, timestamps, repeats=repeats, warmup=warmup,
                         decode_tokens=decode_tokens, question=question)[0]


# ------------------------------------------------------------------------------------ a run
def runnable_cells(adapter, jobs, pixels, timestamps, base: dict) -> tuple[list[EfficiencyCell], list[dict]]:
    """(cells that run on this model, ``not-applicable`` result dicts of those that cannot, with why)."""
    import torch

    from methods.types import NotApplicable

    runnable, rejected = [], []
    for m, r in jobs:
        try:
            c = EfficiencyCell(adapter, m, r)
            with torch.inference_mode():  # one untimed pass: a method that cannot run here says why
                c.request(adapter, pixels, timestamps, QUESTION, 0)
            runnable.append(c)
        except NotApplicable as exc:  # the method's own rule; any other error fails the run loudly
            rejected.append({**base, "method": m, "retention": r, "rtag": rtag(r), "status": "not-applicable",
                             "reason": str(exc)})
    return runnable, rejected


def run_efficiency(*, arch: str, methods: Sequence[str], retentions: Sequence[float], device: str = "cpu",
                   dtype: str = "fp32", frames: Optional[int] = None, repeats: int = 3, warmup: int = 1,
                   decode_tokens: int = 16, threads: Optional[int] = None, seed: int = 0,
                   hardware: Optional[str] = None, progress: bool = True,
                   on_measured: Optional[Callable[[list[dict]], None]] = None) -> list[dict]:
    """Time every (method, retention) (vanilla once, at ``full``) on one random-weight model and add
    the cost model's predictions. Cells that cannot run say so (``status: not-applicable``).
    ``on_measured(cells)`` is called with the timings before the predictions are added, so a caller
    can save them and a later failure loses no measurement."""
    import torch

    if threads and not str(device).startswith("cuda"):
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    if "vanilla" not in methods:
        methods = ["vanilla", *methods]  # the baseline of every ratio
    if frames is not None and (isinstance(frames, bool) or int(frames) != frames or frames < 1):
        raise ValueError(f"frames must be a whole number >= 1 (or None for the arch's default), got {frames!r}")
    frames = default_frames(arch) if frames is None else int(frames)
    adapter = build_adapter(arch, device=device, dtype=dtype, seed=seed)
    pixels, ts = make_pixels(adapter, frames, seed)
    hw = hardware or detect_hardware(device)
    spec = adapter.arch_spec(arch, default_frames=frames)
    from methods.registry import takes_retention

    jobs = [(m, r) if takes_retention(m) else (m, None) for m in methods
            for r in (retentions if takes_retention(m) else [None])]
    base = {"arch": arch, "device": device, "dtype": dtype, "frames": frames, "threads": torch.get_num_threads(),
            "attn_implementation": "sdpa", "weights": "random (timing does not depend on weight values)"}
    runnable, cells = runnable_cells(adapter, jobs, pixels, ts, base)
    if progress:
        print(f"[efficiency] {arch}: timing {[c.method for c in runnable]} round-robin, {repeats} repeats",
              file=sys.stderr, flush=True)
    for cell in measure_cells(adapter, runnable, pixels, ts, repeats=repeats, warmup=warmup,
                              decode_tokens=decode_tokens):
        cells.append({**base, **cell, "status": "ok"})
    if on_measured is not None:
        on_measured(cells)
    fit = add_predictions(cells, spec, hardware=hw, dtype=dtype)
    for c in cells:
        c.setdefault("prediction_fit", fit)
    return cells


def provenance_block(device: str, dtype: str, seed: int, config=None) -> dict:
    """The result files' provenance (replicate.provenance) for this run."""
    from replicate.provenance import provenance

    return provenance(config, device=device, dtype=dtype, seed=seed, attn_implementation="sdpa")


def write_cells(cells: list[dict], out: str | Path, *, provenance: dict, summary_name: str = "summary.json") -> Path:
    """One JSON per cell at ``out/{method}/{rtag}.json`` and ``out/summary.json`` (atomic writes)."""
    from replicate.io import write_json

    out = Path(out)
    rows = []
    for c in cells:
        clean = dict(c)
        clean["provenance"] = provenance
        write_json(out / c["method"] / f"{c['rtag']}.json", clean)
        rows.append(summary_row(clean))
    write_json(out / summary_name, {"cells": rows, "provenance": provenance})
    return out / summary_name


def save_measured(cells: list[dict], out: str | Path, *, provenance: dict) -> Path:
    """``out/measured.json``: the timings as measured, written before the predictions are added."""
    from replicate.io import write_json

    return write_json(Path(out) / "measured.json", {"cells": cells, "provenance": provenance,
                                                    "note": "timings before cost-model predictions"})


def summary_row(c: dict) -> dict:
    row = {"method": c["method"], "rtag": c["rtag"], "retention": c.get("retention"), "status": c["status"],
           "label": c.get("label", c["method"]), "arch": c.get("arch"), "device": c.get("device"),
           "reason": c.get("reason")}
    if c["status"] == "ok":
        m, p = c["measured"], c.get("predicted", {})
        row.update({f"measured_{k}": m[k] for k in ("vision_s", "other_s", "llm_s", "ttft_s", "decode_tokens_per_s")})
        row.update({f"predicted_{k}": p.get(k) for k in ("vision_s", "llm_s", "ttft_s", "decode_tokens_per_s")})
        row.update({f"ratio_{k}": v for k, v in c.get("measured_over_predicted", {}).items()})
        sp = c.get("speedup_vs_vanilla", {})
        row.update({f"speedup_{k}": v for k, v in sp.items()})
        row["visual_tokens_llm"] = c.get("visual_tokens_llm")
        mem = c.get("memory", {})
        row["peak_memory"] = mem.get("peak_allocated_gb", mem.get("process_peak_rss_mb"))
        row["peak_memory_unit"] = "GB (cuda allocated)" if "peak_allocated_gb" in mem else "MB (process peak RSS)"
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m replicate.harness.efficiency",
                                description="TTFT split, decode tokens/s and peak memory per method, beside "
                                            "the cost model's prediction (random weights: timing does "
                                            "not depend on weight values).")
    p.add_argument("--arch", default="cpu-bench", choices=ARCHS)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default: fp32 on cpu, bf16 on cuda")
    p.add_argument("--frames", type=int, default=None,
                   help="input frames; default: " + ", ".join(f"{default_frames(a)} ({a})" for a in ARCHS)
                        + " (Qwen2.5-VL: 2 input frames per temporal group)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated registered methods")
    p.add_argument("--retention", default="0.10", help="comma-separated retentions, e.g. 0.10,0.25")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (cpu only)")
    p.add_argument("--hardware", default=None, help="costmodel hardware entry (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory: {method}/{rtag}.json + summary.json")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .validate import HarnessArgumentError, validate_args

    try:  # every argument, before a model is built or anything is timed
        checked = validate_args(args, archs=ARCHS, cpu_bench_config=CPU_BENCH_CONFIG)
    except HarnessArgumentError as exc:
        raise SystemExit(f"error: {exc}")
    dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    methods, rets = checked["methods"], checked["retentions"]
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda but torch.cuda.is_available() is False")
    t0 = time.perf_counter()
    prov = provenance_block(args.device, dtype, args.seed, {"argv": list(argv or sys.argv[1:])})
    cells = run_efficiency(arch=args.arch, methods=methods, retentions=rets, device=args.device, dtype=dtype,
                           frames=args.frames, repeats=args.repeats, warmup=args.warmup,
                           decode_tokens=args.decode_tokens, threads=args.threads, seed=args.seed,
                           hardware=args.hardware,
                           on_measured=lambda measured: save_measured(measured, args.out, provenance=prov))
    prov["wall_s"] = time.perf_counter() - t0
    path = write_cells(cells, args.out, provenance=prov)
    for r in json.loads(Path(path).read_text())["cells"]:
        if r["status"] == "ok":
            print(f"{r['method']:>13} {r['rtag']:>5}  ttft {1e3 * r['measured_ttft_s']:8.1f} ms "
                  f"(vit {1e3 * r['measured_vision_s']:.1f} / other {1e3 * r['measured_other_s']:.1f} / "
                  f"llm {1e3 * r['measured_llm_s']:.1f})  pred {1e3 * r['predicted_ttft_s']:8.1f} ms  "
                  f"decode {r['measured_decode_tokens_per_s']:.1f} tok/s")
        else:
            print(f"{r['method']:>13} {r['rtag']:>5}  {r['status']}: {r['reason']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
