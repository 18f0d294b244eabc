"""Efficiency harness: TTFT split, decode throughput and peak memory per (method, retention).

TTFT = vision + other + LLM prefill, timed per request (batch 1):

- ``vision``: ``adapter.encode_video`` (SigLIP tower, projector, pooling and the saliency signals the
  methods read -- computed for every method, vanilla included, so this part is identical across
  methods as in HoliTom's figure, where the ViT bar is 500 ms for all);
- ``other``: the method's pre-LLM reduction plus splicing the prompt (``build_inputs``);
- ``llm``: ``adapter.prefill`` with the method's inner plan, KV cache on (what generation needs),
  up to the first token's logits.

Decode: ``--decode-tokens`` greedy steps after a prefill (EOS ignored), tokens/s = steps / time.
Timing: warm-up runs, then the median of ``--repeats``; the same attention implementation (SDPA)
for every method. CPU: ``time.perf_counter`` with ``torch.set_num_threads(threads)``; memory is the
process's peak RSS (VmHWM from /proc/self/status: a high-water mark over the whole process that
cannot be reset per method, labelled as such). CUDA: ``torch.cuda.Event`` pairs with a
synchronize, bf16 by default, ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

Every measurement is written beside the cost model's prediction for the same recorded schedule:
on CPU the per-stage efficiencies of the ``cpu-2core`` entry are fitted on the vanilla run
(``costmodel.fit_efficiency``) and used to predict the others; on CUDA the entry matching the
device name (h100-sxm / h200) is used unfitted. The cost model's "other" stage (projector +
pooling) is inside our measured vision stage, so it is added to the predicted vision time; the
methods' own reduction time is not modelled (predicted other = 0, said so in each file).

Entry point (needs only torch + transformers + this repository; no snakemake, no fvcore)::

    python -m replicate.harness.efficiency --arch llava-onevision-7b --random-weights --device cuda \\
        --dtype bf16 --frames 32 --methods vanilla,fastv,visionzip,holitom-wo-m,holitom,tango \\
        --retention 0.10 --repeats 5 --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .options import NO_RETENTION, cell_options, method_label, rtag

#: Mid-size random-weight LLaVA-OV for CPU timing: SigLIP 2 layers / hidden 128 at 224 px (16x16
#: patches -> 8x8 = 64 pooled tokens per frame), Qwen2 4 layers / hidden 512 / 8 heads / 2 KV heads
#: (GQA). At 32 frames the LLM sees 2048 + 1 video tokens: prefill ~0.5 s on 2 threads
#: (environment.md: 4-layer hidden-512 at 2000 tokens = 565 ms) and dominates TTFT.
CPU_BENCH_CONFIG: dict[str, Any] = dict(
    vision_config=dict(model_type="siglip_vision_model", hidden_size=128, intermediate_size=512,
                       num_hidden_layers=2, num_attention_heads=4, patch_size=14, image_size=224,
                       vision_use_head=False),
    text_config=dict(model_type="qwen2", hidden_size=512, intermediate_size=1408, num_hidden_layers=4,
                     num_attention_heads=8, num_key_value_heads=2, vocab_size=1000,
                     max_position_embeddings=8192, rope_theta=1000000.0),
    image_token_index=998, video_token_index=999,
    vision_feature_select_strategy="full", vision_feature_layer=-1)
CPU_BENCH_FRAMES = 32
ARCHS = ("cpu-bench", "llava-onevision-7b")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEFAULT_METHODS = ("vanilla", "fastv", "visionzip", "holitom-wo-m", "holitom", "tango")
QUESTION = ("Question: What happens in the video?\nOptions:\n(A) a red ball moves left\n"
            "(B) a blue square appears\n(C) nothing changes\n(D) the light flashes twice\n"
            "Answer with the option's letter from the given choices directly.")
STAGES = ("vision_s", "other_s", "llm_s", "ttft_s")


# ------------------------------------------------------------------------------------ timing
class Timer:
    """Segment timer: ``mark()`` records a point; ``segments()`` returns the seconds between marks.
    CUDA: events recorded on the current stream, one synchronize at the end."""

    def __init__(self, device: str):
        self.cuda = str(device).startswith("cuda")
        self.points: list = []

    def mark(self) -> None:
        if self.cuda:
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.points.append(ev)
        else:
            self.points.append(time.perf_counter())

    def segments(self) -> list[float]:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1000.0 for a, b in zip(self.points, self.points[1:])]
        return [b - a for a, b in zip(self.points, self.points[1:])]


def process_peak_rss_mb() -> Optional[float]:
    """Peak resident set size of this process (VmHWM), MB; None where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------------------ model
def build_adapter(arch: str, *, device: str = "cpu", dtype: str = "fp32", seed: int = 0):
    """Random-weight adapter of ``arch`` (cpu-bench or a full-size name) on ``device``."""
    import torch

    from methods.adapters import LlavaOnevisionAdapter

    if arch not in ARCHS:
        raise ValueError(f"unknown --arch {arch!r}; allowed: {list(ARCHS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {list(DTYPES)}")
    cfg = CPU_BENCH_CONFIG if arch == "cpu-bench" else arch
    return LlavaOnevisionAdapter.from_config(cfg, dtype=getattr(torch, DTYPES[dtype]), device=device, seed=seed,
                                             attn_implementation="sdpa")


def make_pixels(adapter, frames: int, seed: int = 0):
    """Deterministic random normalised frames (timing does not depend on pixel values)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    s = adapter.image_size
    px = torch.randn(frames, 3, s, s, generator=g)
    return px.to(device=adapter.device, dtype=adapter.dtype), torch.arange(frames, dtype=torch.float32) * 0.5


# ------------------------------------------------------------------------------------ one cell
def _decode(adapter, logits, res, steps: int) -> None:
    import torch

    from methods.runtime import llm_decode_step

    emb = adapter.lm.embed_tokens
    tok = int(logits.argmax())
    for i in range(steps):
        h = llm_decode_step(adapter.lm, emb(torch.tensor([[tok]], device=adapter.device)), res.cache,
                            res.next_position + i)
        tok = int(adapter.model.lm_head(h[0, -1]).argmax())  # greedy; EOS ignored


class _Cell:
    """One (method, retention) being timed: its options, Method and collected measurements."""

    def __init__(self, adapter, method: str, retention: Optional[float], options: Optional[dict] = None):
        from methods.registry import get_method

        tower_layers = len(adapter.model.model.vision_tower.encoder.layers)
        self.method, self.retention = method, retention
        self.opts = cell_options(method, retention, adapter.num_layers, overrides=options, vision_layers=tower_layers)
        self.m = get_method(method, **self.opts["applied"])
        self.runs: list[list[float]] = []
        self.dec: list[float] = []
        self.last = None

    def once(self, adapter, pixels, timestamps, question: str):
        t = Timer(str(adapter.device))
        t.mark()
        tokens = adapter.encode_video(pixels, timestamps)
        t.mark()
        red = self.m.reduce(tokens) if self.m.has_pre_llm else None
        inputs = adapter.build_inputs(question, tokens, red)
        t.mark()
        logits, res = adapter.prefill(inputs, use_cache=True)
        t.mark()
        return t, inputs, logits, res


def measure_cells(adapter, cells: Sequence[_Cell], pixels, timestamps, *, repeats: int = 3, warmup: int = 1,
                  decode_tokens: int = 16, question: str = QUESTION) -> list[dict[str, Any]]:
    """Time ``cells`` round-robin (repeat r of every cell before repeat r + 1 of any), so slow drifts
    of a shared machine's load hit every method alike; medians per cell."""
    import torch

    from methods.base import apply_method

    if repeats < 1 or warmup < 0 or decode_tokens < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, decode_tokens >= 1; got {repeats}, {warmup}, {decode_tokens}")
    cuda = str(adapter.device).startswith("cuda")
    with torch.inference_mode():
        for c in cells:
            with apply_method(adapter, c.m):
                for _ in range(warmup):
                    _, _, logits, res = c.once(adapter, pixels, timestamps, question)
                    _decode(adapter, logits, res, min(decode_tokens, 2))
        for _ in range(repeats):
            for c in cells:
                with apply_method(adapter, c.m):
                    t, inputs, logits, res = c.once(adapter, pixels, timestamps, question)
                    c.runs.append(t.segments())
                    td = Timer(str(adapter.device))
                    td.mark()
                    _decode(adapter, logits, res, decode_tokens)
                    td.mark()
                    c.dec.append(td.segments()[0])
                    c.last = (inputs, res)
        out = []
        for c in cells:
            with apply_method(adapter, c.m):
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    _, inputs, logits, res = c.once(adapter, pixels, timestamps, question)
                    _decode(adapter, logits, res, decode_tokens)
                    torch.cuda.synchronize()
                    memory = {"peak_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
                              "kind": "torch.cuda.max_memory_allocated after reset_peak_memory_stats (one request)"}
                else:
                    memory = {"process_peak_rss_mb": process_peak_rss_mb(),
                              "kind": "process peak RSS (VmHWM): high-water mark of the whole process so far, "
                                      "not resettable per method"}
                inputs, res = c.last
                sched = adapter.schedule(inputs, res, decode_steps=decode_tokens, label=c.method)
            med = [statistics.median(r[i] for r in c.runs) for i in range(3)]
            measured = {"vision_s": med[0], "other_s": med[1], "llm_s": med[2], "ttft_s": sum(med),
                        "ttft_runs_s": [sum(r) for r in c.runs], "ttft_min_s": min(sum(r) for r in c.runs),
                        "split_runs_s": c.runs,
                        "decode_tokens_per_s": decode_tokens / statistics.median(c.dec), "decode_runs_s": c.dec}
            out.append({"method": c.method, "label": method_label(c.method, c.opts["applied"]),
                        "retention": c.retention, "rtag": rtag(c.retention), "options": c.opts,
                        "measured": measured, "memory": memory, "repeats": repeats, "warmup": warmup,
                        "decode_tokens": decode_tokens, "order": "round-robin over methods per repeat",
                        "visual_tokens_llm": int(res.llm_visual[0]), "prompt_tokens": int(inputs.length),
                        "schedule": _asdict(sched), "_schedule_obj": sched})
    return out


def time_cell(adapter, method: str, retention: Optional[float], pixels, timestamps, *, repeats: int = 3,
              warmup: int = 1, decode_tokens: int = 16, options: Optional[dict] = None,
              question: str = QUESTION) -> dict[str, Any]:
    """Measured TTFT split (median of ``repeats``), decode tokens/s, memory and the recorded
    schedule of one (method, retention) on ``adapter``. Raises ValueError for bad options."""
    cell = _Cell(adapter, method, retention, options)
    return measure_cells(adapter, [cell], pixels, timestamps, repeats=repeats, warmup=warmup,
                         decode_tokens=decode_tokens, question=question)[0]


def _asdict(s) -> dict:
    from dataclasses import asdict

    return asdict(s)


# ------------------------------------------------------------------------------------ predictions
def detect_hardware(device: str) -> str:
    """costmodel hardware entry for ``device``: cpu-2core, or h100-sxm / h200 by the CUDA name."""
    if not str(device).startswith("cuda"):
        return "cpu-2core"
    import torch

    name = torch.cuda.get_device_name(torch.device(device)).lower()
    if "h200" in name:
        return "h200"
    if "h100" in name:
        return "h100-sxm"
    if "a800" in name:
        return "a800"
    if "a100" in name:
        return "a100-80g"
    raise ValueError(f"no costmodel hardware entry for CUDA device {name!r}")


def _raw_prediction(arch, sched, hardware: str, dtype: str, efficiency: Optional[dict] = None) -> dict:
    """Predicted seconds mapped onto the measured stages (cost-model other = projector + pooling,
    which runs inside our vision stage)."""
    from costmodel import predict_latency

    p = predict_latency(arch, sched, hardware, dtype=dtype, efficiency=efficiency)
    return {"vision_s": p["vision_s"] + p["other_s"], "llm_s": p["prefill_s"],
            "decode_s_per_token": p["decode_s_per_token"]}


def add_predictions(cells: list[dict], arch, *, hardware: str, dtype: str) -> dict[str, Any]:
    """Write ``predicted`` and ``measured_over_predicted`` into every cell; returns the fit info.
    CPU (``cpu-2core``): efficiencies fitted on the vanilla cell; otherwise the table's defaults."""
    from costmodel import fit_efficiency

    fit: dict[str, Any] = {"hardware": hardware, "dtype": dtype}
    ok = [c for c in cells if c.get("status") == "ok"]
    if hardware == "cpu-2core":
        van = [c for c in ok if c["method"] == "vanilla"]
        if not van:
            raise ValueError("fitting the cpu-2core efficiencies needs the vanilla cell")
        ones = {s: 1.0 for s in ("vision", "other", "prefill", "decode")}
        raw_v = _raw_prediction(arch, van[0]["_schedule_obj"], hardware, dtype, ones)
        mv = van[0]["measured"]
        eff = {"vision_s": fit_efficiency([mv["vision_s"]], [raw_v["vision_s"]]),
               "llm_s": fit_efficiency([mv["llm_s"]], [raw_v["llm_s"]]),
               "decode_s_per_token": fit_efficiency([1.0 / mv["decode_tokens_per_s"]], [raw_v["decode_s_per_token"]])}
        fit.update(method="fit_efficiency on the vanilla cell (one point per stage); predicted = roofline at "
                          "efficiency 1 / fitted efficiency", efficiency=eff,
                   note="an efficiency > 1 means the placeholder cpu-2core peak is below what this CPU reaches")
        for c in ok:
            raw = _raw_prediction(arch, c["_schedule_obj"], hardware, dtype, ones)
            c["predicted"] = {k: raw[k] / eff[k] for k in raw}
    else:
        fit.update(method="unfitted: costmodel default efficiencies of the hardware entry")
        for c in ok:
            c["predicted"] = _raw_prediction(arch, c["_schedule_obj"], hardware, dtype)
    for c in ok:
        p = c["predicted"]
        p["other_s"] = 0.0
        p["other_note"] = "the method's own reduction is not modelled by the cost model"
        p["ttft_s"] = p["vision_s"] + p["llm_s"]
        p["decode_tokens_per_s"] = 1.0 / p.pop("decode_s_per_token")
        m = c["measured"]
        c["measured_over_predicted"] = {
            "ttft": m["ttft_s"] / p["ttft_s"], "vision": m["vision_s"] / p["vision_s"],
            "llm": m["llm_s"] / p["llm_s"], "decode_tokens_per_s": m["decode_tokens_per_s"] / p["decode_tokens_per_s"]}
        c["prediction_fit"] = fit
    van = [c for c in ok if c["method"] == "vanilla"]
    if van:
        v = van[0]
        for c in ok:
            c["speedup_vs_vanilla"] = {
                "ttft_measured": v["measured"]["ttft_s"] / c["measured"]["ttft_s"],
                "ttft_predicted": v["predicted"]["ttft_s"] / c["predicted"]["ttft_s"],
                "llm_measured": v["measured"]["llm_s"] / c["measured"]["llm_s"],
                "llm_predicted": v["predicted"]["llm_s"] / c["predicted"]["llm_s"],
                "decode_measured": c["measured"]["decode_tokens_per_s"] / v["measured"]["decode_tokens_per_s"],
                "decode_predicted": c["predicted"]["decode_tokens_per_s"] / v["predicted"]["decode_tokens_per_s"]}
            c["speedup_vs_vanilla"]["ttft_measured_over_predicted"] = (
                c["speedup_vs_vanilla"]["ttft_measured"] / c["speedup_vs_vanilla"]["ttft_predicted"])
    return fit


# ------------------------------------------------------------------------------------ a run
def run_efficiency(*, arch: str, methods: Sequence[str], retentions: Sequence[float], device: str = "cpu",
                   dtype: str = "fp32", frames: Optional[int] = None, repeats: int = 3, warmup: int = 1,
                   decode_tokens: int = 16, threads: Optional[int] = None, seed: int = 0,
                   hardware: Optional[str] = None, progress: bool = True) -> list[dict]:
    """Time every (method, retention) (vanilla once, at ``full``) on one random-weight model and add
    the cost model's predictions. Cells that cannot run say so (``status: not-applicable``)."""
    import torch

    from methods.types import NotApplicable

    if threads and not str(device).startswith("cuda"):
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    if "vanilla" not in methods:
        methods = ["vanilla", *methods]  # the baseline of every ratio
    frames = frames or (CPU_BENCH_FRAMES if arch == "cpu-bench" else 32)
    adapter = build_adapter(arch, device=device, dtype=dtype, seed=seed)
    pixels, ts = make_pixels(adapter, frames, seed)
    hw = hardware or detect_hardware(device)
    spec = adapter.arch_spec(arch, default_frames=frames)
    jobs = [(m, None) if m in NO_RETENTION else (m, r) for m in methods
            for r in ([None] if m in NO_RETENTION else retentions)]
    base = {"arch": arch, "device": device, "dtype": dtype, "frames": frames, "threads": torch.get_num_threads(),
            "attn_implementation": "sdpa", "weights": "random (timing does not depend on weight values)"}
    cells: list[dict] = []
    runnable: list[_Cell] = []
    for m, r in jobs:
        try:
            c = _Cell(adapter, m, r)
            with torch.inference_mode():  # one untimed pass: a method that cannot run here says why
                from methods.base import apply_method

                with apply_method(adapter, c.m):
                    c.once(adapter, pixels, ts, QUESTION)
            runnable.append(c)
        except NotApplicable as exc:  # the method's own rule; any other error fails the run loudly
            cells.append({**base, "method": m, "retention": r, "rtag": rtag(r), "status": "not-applicable",
                          "reason": str(exc)})
    if progress:
        print(f"[efficiency] {arch}: timing {[c.method for c in runnable]} round-robin, {repeats} repeats",
              file=sys.stderr, flush=True)
    for cell in measure_cells(adapter, runnable, pixels, ts, repeats=repeats, warmup=warmup,
                              decode_tokens=decode_tokens):
        cells.append({**base, **cell, "status": "ok"})
    fit = add_predictions(cells, spec, hardware=hw, dtype=dtype)
    for c in cells:
        c.setdefault("prediction_fit", fit)
    return cells


def provenance_block(device: str, dtype: str, seed: int, config=None) -> dict:
    """replicate.provenance when importable (it is on a bare GPU box too: stdlib + git)."""
    try:
        from replicate.provenance import provenance

        return provenance(config, device=device, dtype=dtype, seed=seed, attn_implementation="sdpa")
    except Exception as exc:  # noqa: BLE001 - provenance must not fail a measurement
        return {"error": f"replicate.provenance unavailable: {exc}", "python": platform.python_version()}


def write_cells(cells: list[dict], out: str | Path, *, provenance: dict, summary_name: str = "summary.json") -> Path:
    """One JSON per cell at ``out/{method}/{rtag}.json`` and ``out/summary.json`` (atomic writes)."""
    from replicate.io import write_json

    out = Path(out)
    rows = []
    for c in cells:
        clean = {k: v for k, v in c.items() if not k.startswith("_")}
        clean["provenance"] = provenance
        write_json(out / c["method"] / f"{c['rtag']}.json", clean)
        rows.append(summary_row(clean))
    write_json(out / summary_name, {"cells": rows, "provenance": provenance})
    return out / summary_name


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
                                            "the cost model's prediction (random weights).")
    p.add_argument("--arch", default="cpu-bench", choices=ARCHS)
    p.add_argument("--random-weights", action="store_true",
                   help="build the model with random weights (the only mode: timing does not depend on weights)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default: fp32 on cpu, bf16 on cuda")
    p.add_argument("--frames", type=int, default=None, help=f"default: {CPU_BENCH_FRAMES} (cpu-bench), 32 (full size)")
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
    cells = run_efficiency(arch=args.arch, methods=methods, retentions=rets, device=args.device, dtype=dtype,
                           frames=args.frames, repeats=args.repeats, warmup=args.warmup,
                           decode_tokens=args.decode_tokens, threads=args.threads, seed=args.seed,
                           hardware=args.hardware)
    prov = provenance_block(args.device, dtype, args.seed, {"argv": list(argv or sys.argv[1:])})
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
