"""Each reduction's span on a device, eager and compiled (issue 26, item 4: on a lent GPU).

``python -m replicate.microbench.reduction_spans --out results/gpu/reduction_spans.json [--compile]``

At LLaVA-OV-7B's shape (32 frames x 14x14 tokens x 3584) and r = 0.10 (DyCoke at 0.25), on the
video-like inputs of :mod:`replicate.microbench.videos`, with the features in the model's dtype
(bf16 on a GPU), every method's ``reduce`` is timed with the device synchronised before and after
each call: the span as the pipeline runs it (a reduction ends when its output size is known on the
host). Median of ``--repeats`` after ``--warmup``. Beside each time: the ops, kernels and host syncs
of one call, counted by :mod:`replicate.microbench.optrace` on the same device (on a CPU that is the
cache-blocked CPU path, not the GPU path that ``reduction_ops`` counts), and issue 26's target where
it sets one (HoliTom and VisionZip <= 5 ms, Tango <= 15 ms), judged on a GPU at the full shape only.

``--compile`` adds ``torch.compile`` of the same call on the first input: with the inductor backend
``mode="reduce-overhead"`` (CUDA graphs for the pieces between host syncs). The first call's seconds
(compilation) are kept apart from the timed calls, the output is compared with the eager one, and a
method that does not compile is recorded with its error, not dropped. The gpu tier's device script
runs this as its ``reduction-spans`` sections; on a CPU it runs too (``--tiny`` in seconds), which
tests the code, not the targets.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from typing import Callable, Optional

import torch

from costmodel.cli import Parser, entry_point, integer, out_file
from replicate.microbench.videos import INPUTS, VideoSpec, video_tokens

SPEC = VideoSpec(32, (14, 14), 3584)
TINY_SPEC = VideoSpec(4, (4, 4), 64)
METHODS = {"tango": {"retention": 0.10}, "holitom-wo-m": {"retention": 0.10}, "prunevid": {"retention": 0.10},
           "dycoke": {"retention": 0.25}, "visionzip": {"retention": 0.10}, "fastvid": {"retention": 0.10}}
#: issue 26, item 4: the reduction span on an H100/H200, ms
TARGETS_MS = {"holitom-wo-m": 5.0, "visionzip": 5.0, "tango": 15.0}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def on_device(tokens, device: torch.device, dtype: torch.dtype):
    """``tokens`` with every tensor on ``device``; features, keys and global features in ``dtype``
    (saliency and timestamps stay fp32, as an adapter gives them)."""
    def move(t, cast=False):
        return None if t is None else t.to(device=device, dtype=dtype if cast else t.dtype)

    return dataclasses.replace(tokens, features=move(tokens.features, True), keys=move(tokens.keys, True),
                               global_features=move(tokens.global_features, True),
                               timestamps=move(tokens.timestamps),
                               saliency={k: move(v) for k, v in tokens.saliency.items()})


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def span_times(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup``, the device idle before and after each
    (each call ends with a synchronisation, so the next starts on an idle device)."""
    from replicate.microbench.methods import wall_times

    def synced() -> None:
        fn()
        _synchronize(device)

    _synchronize(device)
    return wall_times(synced, repeats, warmup)


def _times(runs: list[float]) -> dict:
    return {"median_ms": statistics.median(runs) * 1e3, "min_ms": min(runs) * 1e3, "runs_ms": [r * 1e3 for r in runs]}


def _target(name: str, median_ms: float, device: torch.device, spec: VideoSpec) -> dict:
    """Issue 26's target for ``name``, judged only where it applies: a GPU at the full shape."""
    target = TARGETS_MS.get(name)
    judged = target is not None and device.type == "cuda" and spec == SPEC
    return {"target_ms": target, "meets_target": median_ms <= target if judged else None}


def _spec(tokens) -> VideoSpec:
    F, N, D = tokens.features.shape
    return VideoSpec(F, tuple(tokens.grid), D, tokens.newline_policy)


def eager_span(name: str, tokens, repeats: int, warmup: int) -> dict:
    """One method's eager span on ``tokens`` (already on the device), with its op and sync counts."""
    from methods.registry import get_method
    from replicate.microbench.optrace import trace

    method = get_method(name, **METHODS[name])
    device = tokens.features.device
    with torch.inference_mode():
        runs = span_times(lambda: method.reduce(tokens), device, repeats, warmup)
        out, tr = trace(method.reduce, tokens, sites=False)
    rec = _times(runs)
    rec.update(_target(name, rec["median_ms"], device, _spec(tokens)), ops=tr.ops, kernels=tr.kernels, syncs=tr.num_syncs,
               kept_tokens=int(out.num_tokens))
    return rec


def compiled_span(name: str, tokens, repeats: int, warmup: int, backend: str = "inductor") -> dict:
    """``torch.compile`` of the method's ``reduce`` (inductor: ``mode="reduce-overhead"``): seconds of
    the first call, timed calls, whether the output equals the eager one; the error if it fails."""
    from methods.registry import get_method

    method = get_method(name, **METHODS[name])
    device = tokens.features.device
    mode = "reduce-overhead" if backend == "inductor" else None
    torch._dynamo.reset()
    rec: dict = {"backend": backend, "mode": mode}
    try:
        compiled = torch.compile(method.reduce, backend=backend, mode=mode)
        with torch.inference_mode():
            eager = method.reduce(tokens)
            _synchronize(device)
            t0 = time.perf_counter()
            first = compiled(tokens)
            _synchronize(device)
            rec["first_call_s"] = time.perf_counter() - t0
            same = torch.equal(first.source.cpu(), eager.source.cpu())
            rec["indices_equal"] = same
            rec["max_abs_feature_diff"] = (float((first.features.float() - eager.features.float()).abs().max())
                                           if same and eager.features.numel() else None)
            runs = span_times(lambda: compiled(tokens), device, repeats, warmup)
    except Exception as e:   # recorded, not raised: one method that does not compile must not stop the others
        rec["error"] = f"{type(e).__name__}: {str(e)[:400]}"
        return rec
    rec.update(_times(runs))
    rec.update(_target(name, rec["median_ms"], device, _spec(tokens)))
    return rec


def inputs_on(device: torch.device, dtype: torch.dtype, names, spec: VideoSpec) -> dict:
    """Seeded inputs built on the host (same tensors as the CPU benchmarks), then moved."""
    return {n: on_device(video_tokens(spec, INPUTS[n], seed=0), device, dtype) for n in names}


def run(device: torch.device, dtype: torch.dtype, inputs: list[str], methods: list[str], repeats: int,
        warmup: int, compile_: bool, spec: VideoSpec, backend: str, eager: bool = True,
        on_record: Optional[Callable[[dict], None]] = None,
        time_left: Optional[Callable[[], float]] = None, compile_estimate_s: float = 90.0) -> list[dict]:
    """Every (input, method) eager span (unless not ``eager``), then with ``compile_`` every method
    compiled on the first input; each record passed to ``on_record`` as it is taken. ``time_left`` (seconds) skips a
    compilation that would not fit, with a record saying so."""
    records = []

    def emit(rec: dict) -> None:
        records.append(rec)
        if on_record:
            on_record(rec)

    toks = inputs_on(device, dtype, inputs, spec)
    for inp in inputs if eager else ():
        for m in methods:
            emit({"variant": "eager", "input": inp, "method": m, **eager_span(m, toks[inp], repeats, warmup)})
    if compile_:
        inp = inputs[0]
        for m in methods:
            if time_left is not None and time_left() < compile_estimate_s:
                emit({"variant": "compiled", "input": inp, "method": m,
                      "skipped": f"{time_left():.0f} s left, a compilation is estimated at {compile_estimate_s:.0f} s"})
                continue
            emit({"variant": "compiled", "input": inp, "method": m,
                  **compiled_span(m, toks[inp], repeats, warmup, backend)})
    return records


@entry_point("python -m replicate.microbench.reduction_spans")
def main(argv=None) -> int:
    p = Parser(prog="python -m replicate.microbench.reduction_spans", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=out_file)
    p.add_argument("--device", default=None, help="default: cuda where available, else cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on a GPU, fp32 on a CPU")
    p.add_argument("--inputs", nargs="*", choices=sorted(INPUTS), default=None, help="default: all")
    p.add_argument("--methods", nargs="*", choices=sorted(METHODS), default=None, help="default: all")
    p.add_argument("--repeats", type=integer(1, 1000), default=5)
    p.add_argument("--warmup", type=integer(0, 1000), default=1)
    p.add_argument("--compile", action="store_true", help="also torch.compile each method (first input)")
    p.add_argument("--backend", default=None, help="torch.compile backend (default: inductor on a GPU, eager on a CPU)")
    p.add_argument("--tiny", action="store_true", help=f"shape {TINY_SPEC.frames}x{TINY_SPEC.grid}x{TINY_SPEC.dim}: the dry run")
    a = p.parse_args(argv)
    try:
        device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as e:
        p.error(f"--device {a.device!r}: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {device} but torch.cuda.is_available() is False")
    dtype = DTYPES[a.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    backend = a.backend or ("inductor" if device.type == "cuda" else "eager")
    spec = TINY_SPEC if a.tiny else SPEC
    inputs = a.inputs or list(INPUTS)
    records = run(device, dtype, inputs, a.methods or list(METHODS), a.repeats, a.warmup, a.compile, spec, backend,
                  on_record=lambda r: print(_line(r), flush=True))
    from replicate.io import write_json
    from replicate.microbench.methods import bench_provenance

    write_json(a.out, {"what": "each reduction's span on a device (synchronised), eager and compiled",
                       "device": str(device), "dtype": str(dtype).removeprefix("torch."),
                       "shape": [spec.frames, *spec.grid, spec.dim], "repeats": a.repeats, "warmup": a.warmup,
                       "records": records, "provenance": bench_provenance()})
    return 0


def _line(r: dict) -> str:
    head = f"{r['variant']:8s} {r['input']:6s} {r['method']:13s}"
    if "median_ms" in r:
        extra = f" ({r['ops']} ops, {r['syncs']} syncs)" if "ops" in r else ""
        return f"{head} {r['median_ms']:8.2f} ms{extra}"
    return f"{head} {r.get('error') or r.get('skipped')}"


if __name__ == "__main__":
    sys.exit(main())
