"""STTS efficiency in inference and training: cost-model predictions with the packing's real bin
count, and wall-clock timings of the Molmo2 adapter with and without STTS.

Predictions (``predict``): the exact-convention forward cost (vision tower with the packed bins,
connector, LLM prefill, last-token LM head) of vanilla over STTS is the *inference* speed-up; the
*training* step uses the forward+backward convention: backward = 2 x forward for every trainable
matmul (STTS fine-tunes end to end, so every weight is trainable), LM head over every position,
i.e. 3 x the forward with ``lm_head="all"``. STTS pays for its scorer (group attention + 3-layer
MLP per group) in both. The ViT bins come from the real first-fit-decreasing packing with refill
(``replicate.harness.stts_packing``) or, as a bound, ceil(kept patches / 729).

Timings (``time_molmo2``): one request (ViT incl. scoring and packing, LLM prefill) and one
training step (forward + backward of the answer loss, all weights trainable) at each frame count,
vanilla vs STTS, on the adapter's device. The gpu tier runs it on random-weight Molmo2-4B; the cpu
tier on a small random-weight Molmo2 of the real layout (27 x 27 patches).

The training step is taken as Molmo2's trainer takes it (STTS trains on that codebase;
tidalove/molmo2fish@95e0c4c, ``launch_scripts/sft.py`` and ``olmo/train``): every ViT and LLM block
under activation checkpointing (``activation_checkpointing=True``, whole-layer), logits on the
response tokens only (``response_logits_only=True``), bf16. Not reproduced: FSDP2 over 8 GPUs, fp32
master weights under bf16 autocast (``amp_bf16``), ``torch.compile`` and the optimizer step; the
timed step is one device's forward + backward. Without checkpointing Molmo2-4B needs ~174 / 328 GB
at 128 / 256 frames; with it ~32 / 44 GB (``costmodel.memory.training_peak_bytes``; per-token bytes
measured on a full-width layer, ``replicate.harness.activation_memory``). Each measurement is
written as it is taken (``--jsonl``); out of memory is recorded as a result, not a crash.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from costmodel.cli import entry_point
from costmodel.schedule import VisionLoad

#: The paper's reported wall-clock speed-ups (docs/sources.md#claim-s2, #claim-s3; 2nd-hand numbers).
REPORTED = ({"frames": 128, "kind": "inference", "value": 1.61}, {"frames": 128, "kind": "training", "value": 1.62},
            {"frames": 256, "kind": "inference", "value": 2.22}, {"frames": 256, "kind": "training", "value": 2.25})
FRAMES = (16, 32, 64, 128, 256)
TRAIN_FACTOR = 3  # forward + backward = 3 x forward FLOPs (backward: grads w.r.t. inputs and weights)


def scorer_macs(arch, frames: int, groups_per_frame: int, group_size: int = 9) -> int:
    """MACs of the STTS scorer: k/v over every patch, q/o per group, 3-layer MLP on [z_{t-1}, z_t]."""
    d, m = arch.vision.hidden, arch.vision.intermediate
    g = frames * groups_per_frame
    return g * (2 * group_size * d * d + 2 * d * d + 2 * group_size * d + 2 * d * m + m * m + m)


def stts_schedule(arch, frames: int, topk: float, prune_at: int, bins: int, text_tokens: int = 0):
    """The nominal STTS schedule with the ViT tail on ``bins`` packed bins (real packing, refill)."""
    from methods.nominal import nominal_schedule

    base = nominal_schedule(arch, "stts", frames=frames, topk=topk, prune_at=prune_at, text_tokens=text_tokens)
    n = arch.vision.patches_per_frame
    vision = tuple(VisionLoad(frames, n) if l <= prune_at + 1 else VisionLoad(int(bins), n)
                   for l in range(len(base.vision)))
    return replace(base, vision=vision, notes=base.notes + (f"ViT tail on {bins} measured bins",))


def forward_macs(arch, schedule, lm_head: str = "last") -> int:
    from costmodel import exact_costs

    return int(exact_costs(arch, schedule, causal=True, lm_head=lm_head).total())


def predict(arch_name: str = "molmo2-4b", frames: Sequence[int] = FRAMES, topk: float = 0.5, prune_at: int = 3,
            bins: Optional[dict] = None, text_tokens: int = 64) -> list[dict]:
    """Predicted inference and training speed-ups per frame count. ``bins``: frames -> measured
    bin count (else the ceil bound)."""
    from costmodel.arch import load_arch
    from costmodel.memory import training_peak_bytes
    from methods.nominal import nominal_schedule

    arch = load_arch(arch_name)
    n, per_frame = arch.vision.patches_per_frame, arch.tokens_per_frame
    out = []
    for f in frames:
        van = nominal_schedule(arch, "vanilla", frames=f, text_tokens=text_tokens)
        kept = f * per_frame - min(round(per_frame * topk * f), per_frame * (f - 1))
        ceil_bins = math.ceil(kept * (n // per_frame) / n)
        b = int((bins or {}).get(f, ceil_bins))
        st = stts_schedule(arch, f, topk, prune_at, b, text_tokens)
        sc = scorer_macs(arch, f, per_frame, n // per_frame)
        inf_v, inf_s = forward_macs(arch, van), forward_macs(arch, st) + sc
        tr_v = TRAIN_FACTOR * forward_macs(arch, van, "all")
        tr_s = TRAIN_FACTOR * (forward_macs(arch, st, "all") + sc)
        peaks = {f"{name}_train_peak_gb{'' if ck else '_plain'}": training_peak_bytes(arch, sch, checkpointing=ck)["total"] / 1e9
                 for name, sch in (("vanilla", van), ("stts", st)) for ck in (True, False)}
        out.append({"frames": f, "bins": b, "bins_source": "measured packing" if bins and f in bins else "ceil bound",
                    **peaks, "inference": inf_v / inf_s, "training": tr_v / tr_s, "vanilla_forward_macs": inf_v,
                    "stts_forward_macs": inf_s, "scorer_macs": sc,
                    "convention": "exact MACs; training = 3 x forward (all weights trainable), LM head on all "
                                  "positions; inference = forward to the first token"})
    return out


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _clock(fn, device, repeats: int, warmup: int) -> tuple[list[float], object]:
    """Seconds of ``fn()`` over ``repeats`` runs after ``warmup`` calls, and its last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, out


def _request(adapter, pix, method, question: str = "What happens in the video?"):
    """One request through ``methods.pipeline.run``: ViT (+ scorer, bias, packing) -> connector ->
    prompt -> LLM prefill; returns the schedule facts."""
    from methods.pipeline import run

    r = run(adapter, method, pix, question)
    return {"bins": r.video.info["bins"] if hasattr(r.video, "info") else pix.shape[0],
            "llm_visual": r.schedule.llm_visual[0], "prompt": r.inputs.length}


@contextmanager
def activation_checkpointing(model, enabled: bool = True):
    """Every ViT and LLM block recomputed in backward (transformers' gradient checkpointing, which
    our own ViT loop's calls go through too), as Molmo2's trainer does (``activation_checkpointing
    = True``, whole-layer; tidalove/molmo2fish@95e0c4c olmo/train/trainer_config.py). The layers
    checkpoint only in training mode; Molmo2's dropout is 0, so the step computes the same values."""
    if not enabled:
        yield
        return
    was_training = model.training
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):   # the name from transformers 5.24 on
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.train()
    try:
        yield
    finally:
        getattr(model, "activation_checkpointing_disable", model.gradient_checkpointing_disable)()
        model.train(was_training)


def _train_step(adapter, pix, scorer, topk: float, prune_at: int, answer_ids: torch.Tensor,
                checkpointing: bool = True):
    """Forward + backward of the answer loss with every weight trainable (end-to-end SFT), logits
    on the answer tokens only (Molmo2's ``response_logits_only``), blocks checkpointed."""
    from methods.adapters.molmo2 import answer_logits

    with activation_checkpointing(adapter.model, checkpointing):
        run = adapter.run_tower(pix, prune_at=prune_at if scorer is not None else None, topk=topk, scorer=scorer)
        inputs = adapter.build_inputs("What happens in the video?", adapter.tokens_of(run))
        logits = answer_logits(adapter, inputs, answer_ids)
        loss = torch.nn.functional.cross_entropy(logits.float(), answer_ids)
        loss.backward()
    adapter.model.zero_grad(set_to_none=True)
    if scorer is not None:
        scorer.zero_grad(set_to_none=True)
    return loss.detach()


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def measure_one(fn, device, repeats: int, warmup: int) -> dict:
    """Median seconds of ``fn`` and, on CUDA, the peak memory of its runs on ``device`` (statistics
    reset after the previous measurement's tensors are freed). Out of memory is a result: recorded
    with the message, memory released, the next measurement runs."""
    import gc

    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        times, facts = _clock(fn, device, repeats, warmup)
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        if not _is_oom(exc):
            raise
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {"status": "out-of-memory", "reason": str(exc).splitlines()[0][:300]}
    out = {"status": "ok", "seconds": statistics.median(times), "runs_s": times,
           "facts": facts if isinstance(facts, dict) else {}}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return out


def time_molmo2(adapter, frames: Sequence[int], topk: float = 0.5, prune_at: int = 3, repeats: int = 3,
                warmup: int = 1, seed: int = 0, train: bool = True, checkpointing: bool = True,
                on_measurement: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """Measured inference and training-step seconds, vanilla vs STTS, per frame count: one row per
    frame count. Each measurement (frames x method x inference/training) is passed to
    ``on_measurement`` as soon as it is taken, so a caller can write it before the next one runs."""
    from methods.baselines.inner_llm import Vanilla
    from methods.stts_method import STTS, STTSMethodConfig

    dev = adapter.device
    stts = STTS(STTSMethodConfig(topk=topk, prune_at=prune_at, seed=seed))
    scorer = stts.scorer(adapter)
    methods = {"vanilla": Vanilla(), "stts": stts}
    answer = torch.arange(11, 15, device=dev)
    for p in adapter.model.parameters():
        p.requires_grad_(True)
    rows = []
    for f in frames:
        pix = torch.randn(f, 3, adapter.image_size, adapter.image_size,
                          generator=torch.Generator().manual_seed(seed)).to(device=dev, dtype=adapter.dtype)
        row = {"frames": f, "device": str(dev), "dtype": str(adapter.dtype).replace("torch.", ""),
               "checkpointing": checkpointing}
        for name, sc in (("vanilla", None), ("stts", scorer)):
            jobs = [("inference", lambda: _request(adapter, pix, methods[name]))]
            if train:
                jobs.append(("train_step", lambda: _train_step(adapter, pix, sc, topk, prune_at, answer, checkpointing)))
            for kind, fn in jobs:
                m = measure_one(fn, dev, repeats, warmup)
                record = {"frames": f, "method": name, "measurement": kind, **m, "device": str(dev),
                          "dtype": row["dtype"], "repeats": repeats, "warmup": warmup,
                          "checkpointing": checkpointing if kind == "train_step" else None}
                if on_measurement is not None:
                    on_measurement(record)
                _fill_row(row, name, kind, m)
        for kind in ("inference", "train_step"):
            v, st = row.get(f"vanilla_{kind}_s"), row.get(f"stts_{kind}_s")
            if v is not None and st is not None:
                row["inference_speedup" if kind == "inference" else "training_speedup"] = v / st
        rows.append(row)
    return rows


def _fill_row(row: dict, name: str, kind: str, m: dict) -> None:
    if m["status"] != "ok":
        row[f"{name}_{kind}_status"] = m["status"]
        row[f"{name}_{kind}_reason"] = m["reason"]
        return
    row[f"{name}_{kind}_s"] = m["seconds"]
    if "peak_memory_gb" in m:
        row[f"{name}_{kind}_peak_memory_gb"] = m["peak_memory_gb"]
    if kind == "inference":
        row[f"{name}_bins"], row[f"{name}_llm_visual"] = m["facts"]["bins"], m["facts"]["llm_visual"]


def cpu_bench_molmo2(seed: int = 0):
    """A small random-weight Molmo2 of the real layout for CPU timing: 27 x 27 patches at 378 px,
    3 x 3 pooling, 8 ViT blocks (hidden 96) with the connector on blocks [7, 5], 2-layer LLM."""
    from methods.adapters.molmo2 import Molmo2VideoAdapter, tiny_molmo2_config

    cfg = tiny_molmo2_config(image_size=378, vision_layers=8, text_layers=2)
    cfg["vision_config"].update(hidden_size=96, intermediate_size=192, num_attention_heads=4,
                                num_key_value_heads=4, head_dim=24)
    cfg["adapter_config"].update(hidden_size=96, num_attention_heads=4, num_key_value_heads=4, head_dim=24)
    return Molmo2VideoAdapter.from_config(cfg, seed=seed)


def _jsonl_writer(path: Optional[Path]):
    """A callback appending each measurement to ``path`` as one JSON line (flushed at once)."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(record: dict) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return write


STTS_EFFICIENCY_PROG = "python -m replicate.harness.stts_efficiency"


def build_parser():
    from costmodel.cli import Parser, finite_float, integer, number_list, out_file

    ap = Parser(prog=STTS_EFFICIENCY_PROG, description=main.__doc__)
    ap.add_argument("--arch", default="cpu-bench", choices=("cpu-bench", "molmo2-4b"),
                    help="molmo2-4b (random weights, full size) or cpu-bench")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--dtype", default=None, choices=("fp32", "bf16"),
                    help="default: bf16 on CUDA (fp32 is never the CUDA default), fp32 on the CPU")
    ap.add_argument("--frames", type=number_list(integer(1, 4096)), default=[4, 8], help="comma-separated frame counts")
    ap.add_argument("--topk", type=finite_float(0, 1, lo_open=True, hi_open=True), default=0.5)
    ap.add_argument("--repeats", type=integer(1, 1000), default=3)
    ap.add_argument("--warmup", type=integer(0, 1000), default=1)
    ap.add_argument("--threads", type=integer(1, 1024), default=None,
                    help="torch CPU threads (cpu only; default: torch's)")
    ap.add_argument("--no-train", action="store_true", help="inference only")
    ap.add_argument("--no-checkpointing", action="store_true",
                    help="train without activation checkpointing (Molmo2's trainer checkpoints every block)")
    ap.add_argument("--out", required=True, type=out_file, help="JSON file to write")
    ap.add_argument("--jsonl", default=None, type=out_file, help="also append every measurement to this JSON-lines file as it "
                                                  "is taken (default: the --out path with .jsonl)")
    return ap


@entry_point(STTS_EFFICIENCY_PROG)
def main(argv=None) -> int:
    """``python -m replicate.harness.stts_efficiency``: time vanilla vs STTS (inference and training
    step) and write the cost model's predictions beside them, as one JSON file."""
    from replicate.io import write_json
    from replicate.provenance import provenance

    from .validate import check_device

    a = build_parser().parse_args(argv)
    check_device(a.device)  # a mistyped device or no CUDA here: one line naming what is allowed
    cuda = a.device.startswith("cuda")
    if a.threads and not cuda:
        torch.set_num_threads(a.threads)
    frames = a.frames
    dtype_name = a.dtype or ("bf16" if cuda else "fp32")
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    if a.arch == "cpu-bench":
        adapter = cpu_bench_molmo2()
    else:
        from methods.adapters.molmo2 import Molmo2VideoAdapter
        adapter = Molmo2VideoAdapter.from_config(a.arch, device=a.device, dtype=dtype)
    adapter.model.to(device=a.device, dtype=dtype)
    jsonl = Path(a.jsonl) if a.jsonl else Path(a.out).with_suffix(".jsonl")
    jsonl.unlink(missing_ok=True)
    rows = time_molmo2(adapter, frames, topk=a.topk, repeats=a.repeats, warmup=a.warmup, train=not a.no_train,
                       checkpointing=not a.no_checkpointing, on_measurement=_jsonl_writer(jsonl))
    write_json(a.out, {"arch": a.arch, "topk": a.topk, "prune_at": 3, "rows": rows,
                       "predicted_molmo2_4b": predict("molmo2-4b", frames, a.topk),
                       "reported": list(REPORTED), "measurements_jsonl": str(jsonl),
                       "provenance": provenance(None, device=a.device, dtype=dtype_name, seed=0,
                                                attn_implementation="sdpa",
                                                extra={"threads": torch.get_num_threads(),
                                                       "checkpointing": not a.no_checkpointing})})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
