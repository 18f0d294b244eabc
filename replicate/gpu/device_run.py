"""One command that measures every efficiency claim's setting on a lent GPU, within a time budget.

``python -m replicate.gpu.device_run --out DIR`` (``replicate/gpu/device_run.sh`` installs the
carried transformers wheel first) runs, in this order (the headline claims first):

1. LLaVA-OV-7B, 32 frames, r = 0.10: vanilla, FastV, PDrop, VisionZip, PruneVid, HoliTom w/o M,
   HoliTom, Tango (TTFT split, decode tok/s over 32 tokens, peak memory alone per cell, host syncs;
   median of 5 after a warm-up);
2. Molmo2-4B, vanilla vs STTS: one request and one training step (checkpointed, as Molmo2's trainer
   trains) at 128 and 256 frames;
3. LLaVA-Video-7B (64 frames) and 4. Qwen2.5-VL-7B (64 input frames): Tango vs vanilla;
5. the reduction spans (issue 26, item 4; ``replicate.microbench.reduction_spans``): each pre-LLM
   reduction alone at 32 x 14x14 x 3584 in bf16 on three kinds of video, with its op and sync counts
   (second, after the headline section: it takes seconds), and last, while time is left, each one
   under ``torch.compile(mode="reduce-overhead")``.

Every measurement is appended to ``DIR/measurements.jsonl`` the moment it is taken (a header line
with the provenance first: GPU, driver, CUDA, torch / transformers versions, commit, dtype,
attention implementation, command). A section whose predicted duration (``estimate_section_s``)
exceeds the time left is skipped with a record saying so, and an alarm at the budget stops the run
cleanly with a ``stopped`` record: nothing measured is lost. Versions are checked before anything is
measured. ``--tiny`` runs the same sections on tiny random models on the CPU in seconds (the dry
run in the test suite).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

OV_METHODS = ("vanilla", "fastv", "pdrop", "visionzip", "prunevid", "holitom-wo-m", "holitom", "tango")
TANGO_PAIR = ("vanilla", "tango")
MEASUREMENTS = "measurements.jsonl"
#: seconds to build a random-weight model on the GPU and free it (weights initialised on the device)
BUILD_S = 20.0
#: requests per efficiency cell beyond the timed ones: a runnability pass, the peak-memory request,
#: the host-sync count (its Python dispatcher hook costs about a second per request at 7B)
EXTRA_REQUESTS, COUNT_OVERHEAD_S = 3, 1.0


class BudgetExceeded(BaseException):
    """The run's time budget is over (raised by the alarm; not an Exception, so nothing swallows it)."""


@dataclass(frozen=True)
class Section:
    name: str                      # the architecture (costmodel name)
    kind: str                      # "efficiency" or "stts"
    methods: tuple[str, ...] = ()
    frames: tuple[int, ...] = ()   # efficiency: one input-frame count; stts: the frame counts
    retention: float = 0.10


REDUCTION_METHODS = ("tango", "holitom-wo-m", "prunevid", "dycoke", "visionzip", "fastvid")
SECTIONS = (Section("llava-onevision-7b", "efficiency", OV_METHODS, (32,)),
            Section("reduction-spans", "reductions", REDUCTION_METHODS, (32,)),
            Section("molmo2-4b", "stts", (), (128, 256)),
            Section("llava-video-7b", "efficiency", TANGO_PAIR, (64,)),
            Section("qwen2.5-vl-7b", "efficiency", TANGO_PAIR, (64,)),
            Section("reduction-spans-compiled", "reductions-compiled", REDUCTION_METHODS, (32,)))
#: seconds per eager reduction call at 32 frames on an H100 (generous: issue 26 expects 5-15 ms), and
#: per torch.compile of one reduction (reduce-overhead)
REDUCTION_CALL_S, COMPILE_S = 0.2, 90.0
#: section kinds that use whatever time the others leave (each step checks the time left), planned at
#: the time of their first step only
OPPORTUNISTIC = ("reductions-compiled",)
TINY_FRAMES = {"llava-onevision-7b": (4,), "llava-video-7b": (4,), "qwen2.5-vl-7b": (4,), "molmo2-4b": (2,)}


@dataclass
class Settings:
    out: Path
    device: str = "cuda"
    dtype: str = "bf16"
    repeats: int = 5
    warmup: int = 1
    decode_tokens: int = 32
    stts_repeats: int = 3
    budget_s: float = 540.0
    tiny: bool = False
    sections: tuple[str, ...] = tuple(s.name for s in SECTIONS)
    command: str = ""
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)


# ------------------------------------------------------------------------------ records
class Recorder:
    """Appends one JSON object per line to ``out/measurements.jsonl``, flushed and synced at once."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / MEASUREMENTS
        self.path.unlink(missing_ok=True)

    def __call__(self, record: dict) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _nvidia_smi() -> dict:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"nvidia_smi": None}
    name, driver, memory = (x.strip() for x in out.splitlines()[0].split(","))
    return {"gpu": name, "driver": driver, "gpu_memory": memory}


def _commit() -> dict:
    """The commit the run's tree came from: git where the repository is there, else the file that
    ``prepare.sh`` wrote beside the carried wheels (the device machine gets no .git)."""
    from replicate.provenance import git_state

    state = git_state()
    if state.get("commit"):
        return state
    stamp = Path(__file__).resolve().parents[2] / ".whl" / "commit.txt"
    if stamp.is_file():
        commit, _, dirty = stamp.read_text().strip().partition(" ")
        return {"commit": commit, "dirty": dirty == "dirty", "commit_source": ".whl/commit.txt"}
    return {"commit": None, "dirty": None}


def provenance(s: Settings) -> dict:
    """The header record: hardware, software, code version, settings, command."""
    import torch
    import transformers

    from methods.versions import check_floors, molmo2_supported

    versions = check_floors()
    out = {"record": "header", **versions, "transformers_path": str(Path(transformers.__file__).parent),
           "python": sys.version.split()[0], "cuda": torch.version.cuda, **_commit(),
           "device": s.device, "dtype": s.dtype, "attn_implementation": "sdpa", "tiny": s.tiny,
           "repeats": s.repeats, "warmup": s.warmup, "decode_tokens": s.decode_tokens,
           "stts_repeats": s.stts_repeats, "budget_s": s.budget_s, "command": s.command,
           "molmo2_supported": molmo2_supported(),
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if s.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(s.device))
        out.update(_nvidia_smi(), gpu_name=props.name, gpu_total_memory_gb=props.total_memory / 1e9,
                   multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
    return out


# ------------------------------------------------------------------------------ estimates
def estimate_section_s(section: Section, s: Settings, hardware: str = "h100-sxm") -> float:
    """Predicted seconds of ``section`` on ``hardware`` (cost model + launch overheads): build, then
    per efficiency cell warm-up + timed + extra requests; per STTS frame count two requests and two
    training steps per method, each repeated."""
    from costmodel import load_arch, predict_latency, predict_training_step
    from methods.nominal import nominal_schedule

    if section.kind == "reductions-compiled":      # opportunistic: one compilation and its timed calls
        return 10.0 + COMPILE_S + (s.repeats + s.warmup + 1) * REDUCTION_CALL_S
    if section.kind == "reductions":
        from replicate.microbench.videos import INPUTS

        return 10.0 + len(INPUTS) * len(section.methods) * (s.repeats + s.warmup + 1) * REDUCTION_CALL_S
    arch = load_arch(section.name)
    if section.kind == "stts":
        from replicate.harness.stts_efficiency import predict, stts_schedule

        total = BUILD_S
        for f in section.frames:
            van = nominal_schedule(arch, "vanilla", frames=f, text_tokens=64)
            st = stts_schedule(arch, f, 0.5, 3, predict(section.name, (f,), 0.5)[0]["bins"], 64)
            for sched in (van, st):
                step = predict_latency(arch, sched, hardware)["ttft_s"] + predict_training_step(arch, sched, hardware)["step_s"]
                total += (s.stts_repeats + s.warmup) * step
        return total
    frames = section.frames[0]
    total = BUILD_S
    for m in section.methods:
        kw = {} if m == "vanilla" else {"retention": section.retention}
        try:
            sched = nominal_schedule(arch, m, frames=frames // (2 if arch.family == "qwen2_5_vl" else 1),
                                     text_tokens=100, decode_steps=s.decode_tokens, **kw)
        except ValueError:      # a method whose retention is set through its own options: vanilla's time
            sched = nominal_schedule(arch, "vanilla", frames=frames // (2 if arch.family == "qwen2_5_vl" else 1),
                                     text_tokens=100, decode_steps=s.decode_tokens)
        p = predict_latency(arch, sched, hardware)
        request = p["ttft_s"] + s.decode_tokens * p["decode_s_per_token"]
        total += (s.repeats + s.warmup + EXTRA_REQUESTS) * request + COUNT_OVERHEAD_S
    return total


# ------------------------------------------------------------------------------ sections
def _tiny_adapter(name: str):
    from methods.adapters import LlavaOnevisionAdapter, Qwen2_5_VLAdapter

    if name == "qwen2.5-vl-7b":
        return Qwen2_5_VLAdapter.tiny(text_layers=4)
    if name == "molmo2-4b":
        from methods.adapters.molmo2 import Molmo2VideoAdapter

        return Molmo2VideoAdapter.tiny()
    setting = "llava-video" if name == "llava-video-7b" else "llava-onevision"
    return LlavaOnevisionAdapter.tiny(setting, layers=4, image_size=56)


def _full_adapter(name: str, s: Settings):
    """The full-size random-weight model, built on the device (timing does not depend on weights)."""
    import torch

    from replicate.harness.bench_models import DTYPES, build_adapter

    if name == "molmo2-4b":
        from methods.adapters.molmo2 import Molmo2VideoAdapter

        return Molmo2VideoAdapter.from_config(name, device=s.device, dtype=getattr(torch, DTYPES[s.dtype]))
    return build_adapter(name, device=s.device, dtype=s.dtype)


def run_efficiency_section(section: Section, adapter, s: Settings, write: Callable[[dict], None]) -> None:
    from replicate.harness.efficiency import run_efficiency

    frames = TINY_FRAMES[section.name][0] if s.tiny else section.frames[0]
    tag = {"record": "measurement", "section": section.name}
    cells = run_efficiency(arch=section.name if not s.tiny else "cpu-bench", methods=list(section.methods),
                           retentions=[section.retention], device=s.device, dtype=s.dtype, frames=frames,
                           repeats=s.repeats, warmup=s.warmup, decode_tokens=s.decode_tokens, progress=False,
                           adapter=adapter, hardware="cpu-2core" if s.tiny else None,
                           on_cell=lambda cell: write({**tag, **cell}))
    write({"record": "predictions", "section": section.name,
           "cells": [{k: c.get(k) for k in ("method", "rtag", "predicted", "speedup_vs_vanilla",
                                            "measured_over_predicted", "prediction_fit")} for c in cells]})


def run_stts_section(section: Section, adapter, s: Settings, write: Callable[[dict], None]) -> None:
    from replicate.harness.stts_efficiency import predict, time_molmo2

    frames = TINY_FRAMES[section.name] if s.tiny else section.frames
    rows = time_molmo2(adapter, frames, repeats=s.stts_repeats, warmup=s.warmup,
                       on_measurement=lambda m: write({"record": "measurement", "section": section.name, **m}))
    write({"record": "stts-summary", "section": section.name, "rows": rows,
           "predicted_molmo2_4b": predict("molmo2-4b", section.frames, 0.5)})


def run_reduction_section(section: Section, s: Settings, write: Callable[[dict], None]) -> None:
    """Eager spans on every input ("reductions"), or each method compiled on one ("reductions-compiled",
    a compilation only while the budget has room for it)."""
    import torch

    from replicate.microbench import reduction_spans as spans
    from replicate.microbench.videos import INPUTS

    compiled = section.kind == "reductions-compiled"
    device = torch.device(s.device)
    spans.run(device, spans.DTYPES[s.dtype], list(INPUTS)[:1] if compiled else list(INPUTS), list(section.methods),
              s.repeats, s.warmup, compiled, spans.TINY_SPEC if s.tiny else spans.SPEC,
              "inductor" if device.type == "cuda" else "eager", eager=not compiled,
              on_record=lambda r: write({"record": "measurement", "section": section.name, **r}),
              time_left=s.left, compile_estimate_s=0.0 if s.tiny else COMPILE_S)


def run_section(section: Section, s: Settings, write: Callable[[dict], None]) -> None:
    """Build the section's model, measure, free it. Skipped (with the reason) when it cannot run here
    or would not fit in the time left."""
    from methods.versions import MOLMO2_TRANSFORMERS_FLOOR, molmo2_supported

    if section.kind == "stts" and not molmo2_supported():
        write({"record": "skipped", "section": section.name,
               "reason": f"Molmo2 needs transformers >= {MOLMO2_TRANSFORMERS_FLOOR} (carry the wheel: "
                         "replicate/gpu/prepare.sh)"})
        return
    if not s.tiny:
        need = estimate_section_s(section, s)
        if need > s.left():
            write({"record": "skipped", "section": section.name,
                   "reason": f"predicted {need:.0f} s, {s.left():.0f} s of the budget left"})
            return
    t0 = time.monotonic()
    write({"record": "section-start", "section": section.name,
           "estimate_s": None if s.tiny else estimate_section_s(section, s)})
    if section.kind in ("reductions", "reductions-compiled"):   # no model: the reductions alone
        try:
            run_reduction_section(section, s, write)
        finally:
            _free(s.device)
    else:
        adapter = _tiny_adapter(section.name) if s.tiny else _full_adapter(section.name, s)
        try:
            (run_stts_section if section.kind == "stts" else run_efficiency_section)(section, adapter, s, write)
        finally:
            del adapter
            _free(s.device)
    write({"record": "section-end", "section": section.name, "wall_s": time.monotonic() - t0})


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ main
PROG = "python -m replicate.gpu.device_run"


def build_parser() -> argparse.ArgumentParser:
    from costmodel.cli import Parser, finite_float, integer

    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder: measurements.jsonl (one record per line)")
    p.add_argument("--budget-s", type=finite_float(0, lo_open=True), default=540.0,
                   help="stop cleanly after this many seconds (default 540)")
    p.add_argument("--tiny", action="store_true", help="tiny random models on the CPU: the dry run")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    p.add_argument("--repeats", type=integer(1, 1000), default=5)
    p.add_argument("--stts-repeats", type=integer(1, 1000), default=3)
    p.add_argument("--warmup", type=integer(0, 1000), default=1)
    p.add_argument("--decode-tokens", type=integer(1, 100000), default=32)
    p.add_argument("--sections", default=",".join(s.name for s in SECTIONS),
                   help="comma-separated subset of: " + ", ".join(s.name for s in SECTIONS))
    return p


def settings_from(argv: Optional[Sequence[str]]) -> Settings:
    a = build_parser().parse_args(argv)
    known = {s.name for s in SECTIONS}
    chosen = tuple(x for x in a.sections.split(",") if x)
    bad = [x for x in chosen if x not in known]
    if bad or not chosen:
        from costmodel.cli import fail

        fail(PROG, f"unknown section(s) {bad}; allowed: {sorted(known)}")
    device = a.device or ("cpu" if a.tiny else "cuda")
    counts = (dict(repeats=1, stts_repeats=1, warmup=0, decode_tokens=2) if a.tiny else
              dict(repeats=a.repeats, stts_repeats=a.stts_repeats, warmup=a.warmup, decode_tokens=a.decode_tokens))
    return Settings(out=Path(a.out), device=device, dtype="bf16" if device.startswith("cuda") else "fp32",
                    budget_s=a.budget_s, tiny=a.tiny, sections=chosen,
                    command=" ".join(["python -m replicate.gpu.device_run", *(argv or sys.argv[1:])]), **counts)


_BUDGET_OVER: list[bool] = [False]


def _alarm(signum, frame):
    _BUDGET_OVER[0] = True
    raise BudgetExceeded()


def _stop_when_over(write: Recorder):
    """``write``, then BudgetExceeded once the alarm has fired: the alarm's own exception is lost
    when it lands in a destructor or a garbage-collection callback (Python prints and ignores it
    there), so the run also stops at the next record it writes."""
    def checked(record: dict) -> None:
        write(record)
        if _BUDGET_OVER[0]:
            raise BudgetExceeded()
    return checked


def main(argv: Optional[Sequence[str]] = None) -> int:
    s = settings_from(argv)
    if s.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            from costmodel.cli import fail

            fail(PROG, f"--device {s.device} but torch.cuda.is_available() is False (--tiny runs on the CPU)")
    write = Recorder(s.out)
    write(provenance(s))                        # versions checked here, before anything is measured
    _BUDGET_OVER[0] = False
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(s.left(), 1.0))
    try:
        for section in SECTIONS:
            if section.name in s.sections:
                run_section(section, s, _stop_when_over(write))
    except BudgetExceeded:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    stopped = f"budget of {s.budget_s:.0f} s reached" if _BUDGET_OVER[0] else None
    write({"record": "done", "wall_s": time.monotonic() - s.started, "stopped": stopped})
    print(f"wrote {write.path}" + (f" (stopped: {stopped})" if stopped else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
