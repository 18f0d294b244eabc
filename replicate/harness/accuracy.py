"""One accuracy cell of the cpu tier: a method at a retention on SynthVideoQA, through the adapter.

Per sample: uint8 video -> ``replicate.synthvqa.model.preprocess_video`` (the training
preprocessing) -> ``methods.pipeline.run`` (encode, the method's reduction, the qwen chat prompt
``<video>\\n{question}`` -- the same prompt as ``replicate.synthvqa.tokenizer.chat_prompt`` --,
prefill with the method's inner plan, no decode) -> option-letter logits at the last position ->
argmax. The per-sample request is
``replicate.synthvqa.evaluate.pipeline_option_logits``; unpruned, it equals the batched path of
``replicate.synthvqa.evaluate`` (tests/harness holds the logits equal).

The dataset is always labelled ``SynthVideoQA-<split>``: these are analogues of the papers'
benchmarks, never the benchmarks.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from methods.types import NotApplicable

from .options import cell_setting, rtag

DATASET = "SynthVideoQA"


def load_checkpoint(model_dir: str | Path):
    """(adapter, SynthConfig) of a checkpoint written by ``python -m replicate.synthvqa.train``."""
    from methods.adapters import LlavaOnevisionAdapter
    from replicate.synthvqa.data import SynthConfig
    from replicate.synthvqa.model import Layout

    model_dir = Path(model_dir)
    if not (model_dir / "synthvqa.json").is_file():
        raise ValueError(f"{str(model_dir)!r} is not a SynthVideoQA checkpoint (synthvqa.json missing)")
    d = json.loads((model_dir / "synthvqa.json").read_text())
    try:  # the token layout the model was trained in
        layout = Layout.from_dict(d.get("layout"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{model_dir / 'synthvqa.json'} key layout: {exc}") from None
    adapter = LlavaOnevisionAdapter.from_pretrained(model_dir, setting=layout.setting, time_prompt=layout.time_prompt)
    fields = SynthConfig.__dataclass_fields__
    data = SynthConfig.from_dict({k: v for k, v in d.items() if k in fields})
    return adapter, data


def _schedule_dict(s) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(s)


def cell_costs(arch, schedule) -> dict[str, Any]:
    """Paper-convention and exact FLOPs of a recorded schedule (costmodel)."""
    from costmodel import exact_costs, paper_flops

    exact = exact_costs(arch, schedule, causal=False, lm_head="last")
    return {"paper_flops": int(2 * paper_flops(arch, schedule)),
            "paper_macs": int(paper_flops(arch, schedule)),
            "paper_convention": "FastV formula, visual tokens, LLM prefill; paper_macs is the papers' printed 'FLOPs' (MACs)",
            "exact_flops": int(exact.total()), "exact_flops_by_stage": exact.by_stage()}


@torch.no_grad()
def evaluate_adapter(adapter, method, samples, tokenizer, *, progress: bool = True, desc: str = "") -> dict:
    """Accuracy of ``method`` (a Method or None) over ``samples``; records the first schedule."""
    from methods.attach import apply_method
    from replicate.synthvqa.evaluate import max_options, pipeline_option_logits
    from replicate.synthvqa.tokenizer import letter_ids

    n_opt = max_options(samples)
    letters = torch.tensor(letter_ids(tokenizer, n_opt))
    correct: list[bool] = []
    fam: dict[str, list[bool]] = defaultdict(list)
    logits_all = torch.full((len(samples), n_opt), float("-inf"))
    visual, layer_avg, first = [], [], None
    label = getattr(method, "name", "vanilla") or "vanilla"
    it = samples
    if progress:
        from tqdm import tqdm

        it = tqdm(samples, desc=desc or "accuracy", leave=False, mininterval=5)
    ctx = apply_method(adapter, method) if method is not None else None
    try:
        for i, s in enumerate(it):
            lg, r = pipeline_option_logits(adapter, method, s, letters, label=label)
            res = r.prefill
            logits_all[i, :lg.shape[0]] = lg
            ok = int(lg.argmax()) == s.answer_index
            correct.append(ok)
            fam[s.family].append(ok)
            visual.append(int(res.llm_visual[0]))
            layer_avg.append(sum(res.llm_visual) / len(res.llm_visual))
            if first is None:
                first = r.schedule
    finally:
        if ctx is not None:
            ctx.remove()
    return {"accuracy": sum(correct) / len(correct), "n": len(samples),
            "per_family": {f: sum(v) / len(v) for f, v in sorted(fam.items())},
            "per_family_n": {f: len(v) for f, v in sorted(fam.items())},
            "mean_visual_tokens_llm": sum(visual) / len(visual),
            "mean_visual_tokens_layer_avg": sum(layer_avg) / len(layer_avg), "logits": logits_all,
            "schedule": first}


def _raise_unless_method_rule(adapter, method, retention, options, exc) -> None:
    """Options the user gave that the method rejects fail the job (a bad setting must not become a
    not-applicable cell over a good one); a retention the method itself cannot run is its rule."""
    if options:
        try:
            cell_setting(adapter, method, retention).build()
        except ValueError:
            return  # rejected without the user's options too: the method's rule
        raise ValueError(f"{method} options {dict(options)} rejected at retention {retention}: {exc}") from exc


def cell_method(adapter, method: str, retention: Optional[float], options: Optional[Mapping[str, Any]] = None):
    """(options record with its label, Method) of one cell on ``adapter``; ValueError (the record,
    as far as it got, in ``exc.record``) when the method refuses the setting."""
    record: dict = {}
    try:
        opts = cell_setting(adapter, method, retention, options)
        record = {**opts.record(), "label": opts.label}
        return record, opts.build()
    except ValueError as exc:
        exc.record = record
        raise


def run_accuracy_cell(model_dir: str | Path, method: str, options: Optional[Mapping[str, Any]] = None,
                      retention: Optional[float] = None, *, n_samples: int, seed: int = 0, split: str = "test",
                      threads: Optional[int] = None, progress: bool = True,
                      config: Optional[Mapping[str, Any]] = None) -> dict:
    """The result dict of one cell (see module doc). A method that cannot run at this retention on
    this model gives ``status: "not-applicable"`` with the reason instead of raising."""
    from replicate.synthvqa.data import make_split
    from replicate.provenance import provenance

    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    adapter, data_cfg = load_checkpoint(model_dir)
    L = adapter.num_layers
    tower_layers = adapter.vision_layers
    base = {"dataset": f"{DATASET}-{split}", "split": split, "setting": adapter.setting, "method": method,
            "retention": retention, "rtag": rtag(retention), "n_requested": n_samples, "seed": seed,
            "model_dir": str(model_dir), "llm_layers": L, "vision_layers": tower_layers,
            "frames": data_cfg.frames, "tokens_per_frame": adapter.tokens_per_frame,
            "perf_kept_pct": None,  # filled at aggregation: accuracy / vanilla accuracy * 100
            "provenance": provenance(config, device="cpu", dtype="fp32", seed=seed, attn_implementation="sdpa",
                                     extra={"threads": torch.get_num_threads()})}
    try:
        record, m = cell_method(adapter, method, retention, options)
    except ValueError as exc:
        if exc.record:
            base["label"] = exc.record.pop("label")
            base["options"] = exc.record
        _raise_unless_method_rule(adapter, method, retention, options, exc)
        return {**base, "status": "not-applicable", "reason": f"options rejected: {exc}", "accuracy": None}
    base["label"] = record.pop("label")
    base["options"] = record
    samples = make_split(split, n_samples, seed, data_cfg)
    t0 = time.perf_counter()
    try:
        r = evaluate_adapter(adapter, m, samples, adapter.tokenizer, progress=progress,
                             desc=f"{method} {rtag(retention)}")
    except NotApplicable as exc:  # the method's own rule (DyCoke below 25 %); any other error fails the job
        return {**base, "status": "not-applicable", "reason": f"method failed on this model: {exc}",
                "accuracy": None}
    arch = adapter.arch_spec("synthvqa-tiny", default_frames=data_cfg.frames)
    sched = r["schedule"]
    return {**base, "status": "ok", "accuracy": r["accuracy"], "n": r["n"], "per_family": r["per_family"],
            "per_family_n": r["per_family_n"], "mean_visual_tokens_llm": r["mean_visual_tokens_llm"],
            "mean_visual_tokens_layer_avg": r["mean_visual_tokens_layer_avg"],
            "vanilla_visual_tokens": data_cfg.frames * adapter.tokens_per_frame,
            "chance_accuracy": samples.chance_accuracy(),  # lazy split: no video regenerated
            "schedule_first_sample": _schedule_dict(sched), **cell_costs(arch, sched),
            "seconds": time.perf_counter() - t0}
