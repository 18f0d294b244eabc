"""Train the tiny LLaVA-OneVision from scratch on SynthVideoQA, on CPU.

Loss: cross-entropy of the answer letter at the answer position (the assistant's single answer
token), plus the auxiliary probes of ``supervision.py`` (training only; not in the checkpoint).
AdamW with linear warm-up and cosine decay; fresh training samples every step (seeded by (split,
seed, index), so runs are reproducible and never see a val/test sample).

Output (a normal HF checkpoint directory, loadable with
``LlavaOnevisionForConditionalGeneration.from_pretrained``): model weights + config, tokenizer,
``preprocessor_config.json``, ``synthvqa.json`` (dataset settings), ``metrics.json``. The directory
is written under a temporary name and renamed at the end, so an interrupted run leaves nothing a
later step would trust.

CLI: ``python -m replicate.synthvqa.train --out results/cpu/model [--smoke]``
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch

from costmodel.cli import entry_point
from replicate.io import OutputLocked
from replicate.provenance import provenance
from replicate.training import torch_threads, warmup_cosine_lr

from .evaluate import collate, evaluate
from .model import (SETTINGS, Layout, TinyArch, build_inputs_embeds, build_model, lay_out, pooled_side, pooled_video,
                    preprocessor_dict)
from .supervision import AuxProbes, AuxWeights, token_colour_labels
from .data import SPLITS, SynthConfig, make_sample, make_split, save_config
from .tokenizer import build_tokenizer, prompt_texts


#: The cpu-tier model's data: 84x84 frames -> 6x6 patches -> 3x3 = 9 pooled tokens per frame,
#: 8 frames -> 73 video tokens (10 % retention keeps 7). With the auxiliary probes and the default
#: 1200 steps the 3-layer LLM answers every family: 100.0 % test accuracy in 653 s (seed 0,
#: 1 thread; measured). 56 px (2x2 tokens per frame) learns sooner but leaves pruning 32 tokens to
#: choose from; 112 px (16 per frame) costs 1.8 s/step. The generator itself defaults to 16 frames
#: at 112x112 for other uses.
CPU_TIER_DATA = SynthConfig(frames=8, size=84, small_object_px=10, event_object_px=12, light_px=12, ball_px=10)


@dataclass(frozen=True)
class TrainConfig:
    data: SynthConfig = field(default_factory=lambda: CPU_TIER_DATA)
    arch: TinyArch = field(default_factory=lambda: TinyArch(image_size=CPU_TIER_DATA.size))
    # Fixed step count (reproducible: same seed -> same model). 1200 steps x ~0.55 s/step
    # (84 px, probes on, 1 thread; measured) ~ 11 min on 2 cores.
    steps: int = 1200
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.05
    warmup: int = 30
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    # 1 thread: the model is so small that a second thread buys little, and on a shared box
    # OpenMP barriers stall (measured 1.86 s/step with 2 threads vs 0.33 s/step with 1 under load).
    threads: int = 1
    n_val: int = 200
    n_test: int = 1000
    eval_every: int = 500
    log_every: int = 50
    # None: schedules follow step / steps (deterministic). A number: progress is
    # max(step / steps, elapsed / budget), so the LR decay finishes within the budget on a
    # shared, slower machine (then the step count depends on the machine; metrics record it).
    time_budget_s: Optional[float] = None
    # Curriculum on object size: a needle of 1 token in ~100 leaves a from-scratch LLM at chance
    # for thousands of steps; objects start ``curriculum_scale`` x bigger, stay so for
    # ``curriculum_hold`` steps (counted in steps, not time, so a busy machine cannot shrink the
    # objects before the model has left the plateau), then shrink linearly to real size by
    # progress ``curriculum_end``.
    curriculum_scale: float = 2.5
    curriculum_hold: int = 300
    curriculum_end: float = 0.6
    # Auxiliary probes (replicate/synthvqa/supervision.py); AuxWeights(0, 0, 0) trains on the
    # answer loss alone. The summary probe reads the newline token after ``summary_layer`` decoder
    # layers (None: text_layers - 1, the last layer whose output the answer position attends to).
    aux: AuxWeights = field(default_factory=AuxWeights)
    summary_layer: Optional[int] = None
    # Background-token thinning (off by default): a share ``thin_prob`` of the training samples
    # sees only a random U(thin_keep_min, 1) fraction of its background video tokens (masked as
    # keys, original positions kept: what a pruned input looks like to the LLM); tokens showing an
    # event colour are always kept, so no question becomes unanswerable. Off, because the papers'
    # methods are training-free on models trained on whole videos, and on (measured, seed 0, 1000
    # test samples) it changed the methods' ranking more than it removed the shift it targets:
    # random 50 % 64.7 -> 61.1 %, HoliTom 50 % 60.7 -> 78.5 %, FastV 10 % 91.6 -> 78.7 %.
    thin_prob: float = 0.0
    thin_keep_min: float = 0.1
    # Token layout (model.Layout): LLaVA-OV's one newline per video, or LLaVA-Video's newline after
    # every pooled row (the cpu tier trains it without the time instruction: every SynthVideoQA video
    # has the same frame times, so it says nothing, and it makes the prompt 236 tokens instead of
    # 171, measured 1.27 s/step instead of 0.64 for LLaVA-OV).
    layout: Layout = field(default_factory=Layout)

    def __post_init__(self) -> None:
        if self.thin_prob > 0 and SETTINGS[self.layout.setting] != "one_token":
            raise ValueError(f"thin_prob > 0 needs the llava-onevision layout, got {self.layout.setting!r}")
        layer = self.summary_layer
        if layer is not None and not 1 <= layer <= self.arch.text_layers:
            raise ValueError(f"summary_layer must be in [1, {self.arch.text_layers}] (text_layers), got {layer}")
        if not 0.0 <= self.thin_prob <= 1.0 or not 0.0 < self.thin_keep_min <= 1.0:
            raise ValueError(f"thin_prob must be in [0, 1] and thin_keep_min in (0, 1], got "
                             f"{self.thin_prob} and {self.thin_keep_min}")

    @property
    def summary_at(self) -> int:
        return self.arch.text_layers - 1 if self.summary_layer is None else self.summary_layer

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"] = self.data.to_dict()
        return d


def smoke_config() -> TrainConfig:
    """~20 s on 2 cores: enough steps for the loss to fall clearly below its start."""
    return TrainConfig(data=CPU_TIER_DATA, arch=TinyArch(image_size=CPU_TIER_DATA.size, text_layers=2), steps=16,
                       batch_size=8, lr=3e-3, warmup=2, n_val=8, n_test=16, eval_every=10 ** 9,
                       log_every=4, curriculum_hold=0, curriculum_end=0.0)


def progress(step: int, elapsed: float, cfg: TrainConfig) -> float:
    p = step / cfg.steps
    if cfg.time_budget_s is not None:
        p = max(p, elapsed / cfg.time_budget_s)
    return min(p, 1.0)


def _lr(step: int, cfg: TrainConfig, p: Optional[float] = None) -> float:
    """Warm-up then cosine decay placed by the run's progress ``p`` (steps or time budget; None:
    the step fraction)."""
    return warmup_cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, cfg.min_lr_ratio,
                            progress=step / cfg.steps if p is None else p)


def object_scale(step: int, cfg: TrainConfig, p: Optional[float] = None,
                 p_hold: Optional[float] = None) -> float:
    """Object size multiplier at a step; ``p`` = training progress, ``p_hold`` = progress when
    the hold ended (both default to step fractions, i.e. no time budget)."""
    if step < cfg.curriculum_hold:
        return cfg.curriculum_scale
    p = step / cfg.steps if p is None else p
    p_hold = cfg.curriculum_hold / cfg.steps if p_hold is None else p_hold
    if p >= cfg.curriculum_end or p_hold >= cfg.curriculum_end:
        return 1.0
    t = (p - p_hold) / (cfg.curriculum_end - p_hold)
    return cfg.curriculum_scale + (1.0 - cfg.curriculum_scale) * t


def _train_batch(step: int, cfg: TrainConfig, scale: float):
    fams = cfg.data.families
    base = step * cfg.batch_size
    data = replace(cfg.data, object_scale=scale)
    return [make_sample(fams[(base + j) % len(fams)], (SPLITS["train"], cfg.seed, base + j), data)
            for j in range(cfg.batch_size)]


def thinning_mask(colour_labels: torch.Tensor, step: int, cfg: TrainConfig) -> torch.Tensor:
    """(B, N) bool keep-mask of the video tokens (newline excluded) for training step ``step``;
    seeded by (seed, step), so runs stay reproducible."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    B, N = colour_labels.shape
    thin = torch.rand(B, generator=g) < cfg.thin_prob
    share = cfg.thin_keep_min + (1.0 - cfg.thin_keep_min) * torch.rand(B, 1, generator=g)
    drawn = torch.rand(B, N, generator=g) < share
    return (colour_labels > 0) | ~thin[:, None] | drawn


def masked_video_tokens(attention_mask: torch.Tensor, is_video: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Attention mask with the dropped video placeholders zeroed: ``keep`` (B, Nv) lists each row's
    placeholders in order. Position ids are unchanged, so for every kept token this equals
    removing the dropped ones and keeping original positions (tested)."""
    counts = is_video.sum(1)
    if bool((counts != keep.shape[1]).any()):
        raise ValueError(f"keep has {keep.shape[1]} columns; rows have {counts.tolist()} video placeholders")
    mask = attention_mask.clone()
    mask[is_video] = mask[is_video] * keep.flatten().to(mask.dtype)  # row-major: placeholders in order
    return mask


def _losses(model, probes: Optional[AuxProbes], cfg: TrainConfig, samples, batch, step: int = 0):
    """(answer loss, {aux name: weighted loss}) for one batch."""
    visual, newline = pooled_video(model, batch.pixel_values_videos)
    feats = lay_out(visual, newline, model.config, cfg.layout.setting)
    embeds = build_inputs_embeds(model, batch.input_ids, feats)
    is_video = batch.input_ids == model.config.video_token_id
    labels = None
    mask = batch.attention_mask
    if probes is not None or cfg.thin_prob > 0:
        labels = token_colour_labels(torch.stack([s.video for s in samples]), pooled_side(model.config))
    if cfg.thin_prob > 0:
        keep = torch.ones(is_video.shape[0], feats.shape[1], dtype=torch.bool)
        keep[:, :-1] = thinning_mask(labels, step, cfg)
        mask = masked_video_tokens(mask, is_video, keep)
    out = model.model.language_model(inputs_embeds=embeds, attention_mask=mask,
                                     use_cache=False, output_hidden_states=probes is not None)
    rows = torch.arange(embeds.shape[0])
    h = out.last_hidden_state[rows, batch.answer_pos]
    loss = torch.nn.functional.cross_entropy(model.lm_head(h).float(), batch.labels)
    if probes is None:
        return loss, {}
    newline = (is_video.long() * torch.arange(is_video.shape[1])).argmax(1)  # last placeholder
    summary_hidden = out.hidden_states[cfg.summary_at][rows, newline]
    return loss, probes.losses(cfg.aux, visual, summary_hidden, samples, colour_labels=labels)


def train(cfg: TrainConfig, out: Optional[str | Path] = None, log=print) -> tuple[object, object, dict]:
    """Train; returns (model, tokenizer, metrics). Saves a checkpoint dir when ``out`` is given."""
    with torch_threads(cfg.threads):  # no process-wide side effect for callers
        return _train(cfg, out, log)


def _train(cfg: TrainConfig, out, log):
    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.data, prompt_texts(cfg.layout.time_prompt, cfg.data))
    model = build_model(tokenizer, cfg.arch, seed=cfg.seed)
    if cfg.data.size != cfg.arch.image_size:
        raise ValueError(f"data size {cfg.data.size} != model image_size {cfg.arch.image_size}")
    grid = pooled_side(model.config)
    probes = AuxProbes(cfg.arch.text_hidden, grid, cfg.data.families) if cfg.aux.active() else None
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    if probes is not None:
        no_decay += list(probes.parameters())
    params = decay + no_decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    val = list(make_split("val", cfg.n_val, cfg.seed, cfg.data))  # evaluated repeatedly: generated once
    losses: list[float] = []
    aux_losses: dict[str, list[float]] = {}
    history = []
    t0 = time.perf_counter()
    stopped_early = False
    step = 0
    p_hold = None
    model.train()
    for step in range(cfg.steps):
        p = progress(step, time.perf_counter() - t0, cfg)
        if p >= 1.0:
            stopped_early = True
            log(f"time budget {cfg.time_budget_s}s used up at step {step}; stopping")
            step -= 1
            break
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg, p)
        if step == cfg.curriculum_hold:
            p_hold = p
        scale = object_scale(step, cfg, p, p_hold)
        samples = _train_batch(step, cfg, scale)
        loss, aux = _losses(model, probes, cfg, samples, collate(samples, tokenizer, model.config, cfg.layout), step)
        opt.zero_grad(set_to_none=True)
        (loss + sum(aux.values())).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
        for k, v in aux.items():
            aux_losses.setdefault(k, []).append(float(v.detach()))
        elapsed = time.perf_counter() - t0
        if (step + 1) % cfg.log_every == 0:
            recent = sum(losses[-cfg.log_every:]) / cfg.log_every
            extra = " ".join(f"{k} {sum(v[-cfg.log_every:]) / cfg.log_every:.3f}" for k, v in aux_losses.items())
            log(f"step {step + 1}/{cfg.steps} loss {recent:.4f} {extra} lr {_lr(step, cfg, p):.2e} "
                f"scale {scale:.2f} {elapsed:.0f}s")
        if (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            v = evaluate(model, tokenizer, val, layout=cfg.layout)
            history.append({"step": step + 1, "seconds": elapsed, "val_accuracy": v["accuracy"],
                            "per_family": v["per_family"]})
            log(f"  val acc {v['accuracy']:.3f} {v['per_family']}")
            model.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    t1 = time.perf_counter()
    v = evaluate(model, tokenizer, val, layout=cfg.layout)
    test = evaluate(model, tokenizer, make_split("test", cfg.n_test, cfg.seed, cfg.data), layout=cfg.layout)
    metrics = {
        "test_accuracy": test["accuracy"], "test_per_family": test["per_family"],
        "test_n": test["n"], "val_accuracy": v["accuracy"], "val_per_family": v["per_family"],
        "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - t1,
        "steps": len(losses), "stopped_early": stopped_early, "seed": cfg.seed,
        "first_loss": losses[0], "final_loss": sum(losses[-10:]) / len(losses[-10:]),
        "final_aux_losses": {k: sum(v[-10:]) / len(v[-10:]) for k, v in aux_losses.items()},
        "losses": losses, "history": history, "config": cfg.to_dict(),
        "provenance": provenance(None, device="cpu", dtype="float32", seed=cfg.seed,
                                 attn_implementation=getattr(model.config, "_attn_implementation", None),
                                 extra={"threads": cfg.threads}),
    }
    log(f"test acc {test['accuracy']:.4f} {test['per_family']} train {train_seconds:.0f}s")
    if out is not None:
        save_checkpoint(model, tokenizer, cfg, metrics, out)
    return model, tokenizer, metrics


def save_checkpoint(model, tokenizer, cfg: TrainConfig, metrics: dict, out: str | Path) -> Path:
    """Write everything to ``out`` via a temporary sibling directory and an atomic rename."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor_dict(cfg.arch.image_size), indent=2) + "\n")
    save_config(cfg.data, tmp / "synthvqa.json", seed=cfg.seed, layout=asdict(cfg.layout),
                splits={k: f"seed sequence ({v}, seed, index)" for k, v in SPLITS.items()})
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def load_checkpoint(path: str | Path):
    """(model, tokenizer, SynthConfig) from a directory written by ``save_checkpoint``."""
    from transformers import LlavaOnevisionForConditionalGeneration, PreTrainedTokenizerFast

    from methods.adapters.checkpoint_check import check_checkpoint

    path = check_checkpoint(path, "llava_onevision", "LlavaOnevisionForConditionalGeneration")  # whole, first
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(path).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    d = json.loads((path / "synthvqa.json").read_text())
    fields = SynthConfig.__dataclass_fields__
    data = SynthConfig.from_dict({k: v for k, v in d.items() if k in fields})
    return model, tokenizer, data


@entry_point("python -m replicate.synthvqa.train", OutputLocked)
def main(argv=None) -> None:
    from costmodel.cli import Parser, finite_float, integer, out_dir

    ap = Parser(prog="python -m replicate.synthvqa.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=out_dir, help="checkpoint directory to write")
    ap.add_argument("--smoke", action="store_true", help="~20 s config for tests")
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="llava-onevision",
                    help="token layout: one newline per video (LLaVA-OV) or one per pooled row (LLaVA-Video)")
    ap.add_argument("--time-prompt", action="store_true", help="LLaVA-Video's time instruction after the video")
    ap.add_argument("--steps", type=integer(1, 10 ** 7), default=None)
    ap.add_argument("--seed", type=integer(0), default=0)
    ap.add_argument("--threads", type=integer(1, 1024), default=None,
                    help="torch threads (default 2); 1 avoids thread-barrier stalls on an oversubscribed box")
    ap.add_argument("--time-budget", type=finite_float(0, lo_open=True), default=None,
                    help="seconds; stop training after this")
    a = ap.parse_args(argv)
    cfg = smoke_config() if a.smoke else TrainConfig()
    cfg = replace(cfg, seed=a.seed, layout=Layout(a.setting, a.time_prompt))
    if a.steps is not None:
        cfg = replace(cfg, steps=a.steps)
    if a.time_budget is not None:
        cfg = replace(cfg, time_budget_s=a.time_budget)
    if a.threads is not None:
        cfg = replace(cfg, threads=a.threads)
    from replicate.io import output_lock

    with output_lock(a.out):  # one trainer per output folder, even after Snakemake was killed
        _, _, m = train(cfg, a.out)
    print(json.dumps({k: m[k] for k in ("test_accuracy", "test_per_family", "train_seconds", "steps")}))


if __name__ == "__main__":
    main()
